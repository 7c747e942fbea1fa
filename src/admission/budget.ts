/** Periods a budget can cover. */
export type BudgetPeriod = 'day' | 'month';

/** The UTC period a timestamp falls in (`2026-11-22`, `2026-11`) and when it ends. */
export function periodOf(period: BudgetPeriod, now: number): { key: string; endsAt: number } {
  const date = new Date(now);
  const year = date.getUTCFullYear();
  const month = date.getUTCMonth();
  if (period === 'day') {
    const day = date.getUTCDate();
    return { key: date.toISOString().slice(0, 10), endsAt: Date.UTC(year, month, day + 1) };
  }
  return { key: date.toISOString().slice(0, 7), endsAt: Date.UTC(year, month + 1, 1) };
}

/**
 * Spending per scope and period (tokens and USD), kept in memory. Entries of past periods are
 * dropped as new periods begin, so memory stays bounded by the number of active scopes.
 */
export class BudgetLedger {
  #spent = new Map<string, number>();
  #currentDay = '';

  /** Amount spent under `scope` (e.g. `tenant:acme:usd`) in the period containing `now`. */
  spent(scope: string, period: BudgetPeriod, now: number): number {
    return this.#spent.get(`${scope}|${periodOf(period, now).key}`) ?? 0;
  }

  /** Adds `amount` to `scope` for the period containing `now`; returns the new total. */
  charge(scope: string, period: BudgetPeriod, amount: number, now: number): number {
    const day = periodOf('day', now).key;
    if (day !== this.#currentDay) this.#rollOver(day);
    const key = `${scope}|${periodOf(period, now).key}`;
    const total = (this.#spent.get(key) ?? 0) + amount;
    this.#spent.set(key, total);
    return total;
  }

  #rollOver(day: string): void {
    const month = day.slice(0, 7);
    for (const key of this.#spent.keys()) {
      const stamp = key.slice(key.lastIndexOf('|') + 1);
      if (stamp !== day && stamp !== month) this.#spent.delete(key);
    }
    this.#currentDay = day;
  }
}
