import { move, transferableSymbol, valueSymbol } from 'piscina';
import { receivedDataJson, type ReceivedDataTask } from './received-data.js';

/**
 * Worker-thread side of MessageContentPool (piscina task): a large message's content is parsed,
 * checked and turned into its `message.received` data JSON here, so a 25,000-address header costs
 * this thread, never the event loop. The JSON's buffer is transferred back, not copied.
 */
export default function contentTask(task: ReceivedDataTask): unknown {
  const json = receivedDataJson(task);
  return move({ [transferableSymbol]: [json.buffer], [valueSymbol]: json } as unknown as Parameters<typeof move>[0]);
}
