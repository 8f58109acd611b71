/**
 * What happens after a transaction that appended outbox events commits. By default
 * `notifyEventsCommitted` enqueues one `webhooks.dispatch` job per event; the webhooks module
 * attaches a hook to its job queue instead (one in-process and cross-process wake-up of the
 * delivery pumps per commit, which fan out every committed event in batches), because a job per
 * event costs more than delivering the event. Keyed by the job queue object, so several services
 * in one process (tests) each keep their own.
 */
export type EventsCommittedHook = (eventIds: readonly string[]) => void;

const hooks = new WeakMap<object, EventsCommittedHook>();

export function setEventsCommittedHook(jobs: object, hook: EventsCommittedHook): void {
  hooks.set(jobs, hook);
}

export function eventsCommittedHook(jobs: object): EventsCommittedHook | undefined {
  return hooks.get(jobs);
}

/**
 * Deliveries were made due by a statement that appended no event (held deliveries released after
 * a restore): wake the delivery pumps as a commit of events does — this process's at once, the
 * other processes' through the webhooks module's NOTIFY — instead of leaving them to the pumps'
 * 15 s safety tick. False when no webhooks module runs in this process (the tick finds them).
 */
export function wakeDeliveryPumps(jobs: object): boolean {
  const hook = hooks.get(jobs);
  if (!hook) return false;
  hook([]);
  return true;
}
