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
