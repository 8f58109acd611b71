import { move, transferableSymbol, valueSymbol } from 'piscina';
import { messageViewJson, type MessageViewTask } from './message-view-json.js';
import { receivedDataJson, type ReceivedDataTask } from './received-data.js';

/** The JSON's buffer is transferred back, not copied. */
function moved(json: Uint8Array): unknown {
  return move({ [transferableSymbol]: [json.buffer], [valueSymbol]: json } as unknown as Parameters<typeof move>[0]);
}

/**
 * Worker-thread side of MessageContentPool (piscina task): a large message's content is parsed,
 * checked and turned into its `message.received` data JSON here, so a 25,000-address header costs
 * this thread, never the event loop.
 */
export default function contentTask(task: ReceivedDataTask): unknown {
  return moved(receivedDataJson(task));
}

/** The same for the read API: a large message's `GET /v1/messages/:id` JSON (piscina task name `messageView`). */
export function messageView(task: MessageViewTask): unknown {
  return moved(messageViewJson(task));
}
