import { z } from 'zod';

/** Graph change / lifecycle notifications (provider-facts §4.2). Unknown fields are ignored. */
const graphNotificationSchema = z.object({
  subscriptionId: z.string().min(1).max(200),
  clientState: z.string().max(256).optional(),
  changeType: z.string().max(100).optional(),
  lifecycleEvent: z.string().max(100).optional(),
});

export type GraphNotification = z.infer<typeof graphNotificationSchema>;

/** One entry of a Graph notification batch, or undefined when it is not one. */
export function parseGraphNotification(raw: unknown): GraphNotification | undefined {
  const n = graphNotificationSchema.safeParse(raw);
  return n.success ? n.data : undefined;
}
