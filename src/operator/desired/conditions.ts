/** metav1.Condition handling: lastTransitionTime moves only when the status flips. Pure. */
import { CONDITION_ORDER, type Condition, type ConditionReason, type ConditionStatus, type ConditionType } from '../types.js';

export interface ConditionInput {
  type: ConditionType;
  status: ConditionStatus;
  reason: ConditionReason;
  message: string;
}

export function setCondition(existing: Condition[] | undefined, input: ConditionInput, generation: number, now: Date): Condition[] {
  const list = [...(existing ?? [])];
  const i = list.findIndex((c) => c.type === input.type);
  const prev = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    type: input.type,
    status: input.status,
    reason: input.reason,
    message: input.message.slice(0, 32_000),
    observedGeneration: generation,
    lastTransitionTime: prev && prev.status === input.status ? prev.lastTransitionTime : now.toISOString(),
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  const order: readonly string[] = CONDITION_ORDER;
  const rank = (t: string) => (order.indexOf(t) < 0 ? order.length : order.indexOf(t));
  return list.sort((a, b) => rank(a.type) - rank(b.type));
}

export function getCondition(conditions: Condition[] | undefined, type: ConditionType): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** Conditions whose status or reason changed from `before` to `after` (for Events on transitions). */
export function transitions(before: Condition[] | undefined, after: Condition[]): Condition[] {
  return after.filter((c) => {
    const b = getCondition(before, c.type as ConditionType);
    return !b || b.status !== c.status || b.reason !== c.reason;
  });
}
