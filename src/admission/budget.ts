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

/** Spending of one scope in the current day and month. */
interface Spending {
  day: string;
  dayTotal: number;
  month: string;
  monthTotal: number;
}

/**
 * Spending per scope for the current day and month (tokens and USD), kept in memory. A scope's
 * totals reset when a new period begins, so memory stays bounded by the number of scopes. The
 * current period names are computed once per period, not per check: a check is a map lookup.
 */
export class BudgetLedger {
  readonly #spent = new Map<string, Spending>();
  #day = { key: '', endsAt: 0 };
  #month = { key: '', endsAt: 0 };

  /** Amount spent under `scope` (e.g. `tenant:acme:usd`) in the period containing `now`. */
  spent(scope: string, period: BudgetPeriod, now: number): number {
    const spending = this.#spent.get(scope);
    if (spending === undefined) return 0;
    this.#advance(now);
    if (period === 'day') return spending.day === this.#day.key ? spending.dayTotal : 0;
    return spending.month === this.#month.key ? spending.monthTotal : 0;
  }

  /** Adds `amount` to `scope` for the period containing `now`; returns the new total. */
  charge(scope: string, period: BudgetPeriod, amount: number, now: number): number {
    this.#advance(now);
    let spending = this.#spent.get(scope);
    if (spending === undefined) {
      spending = { day: this.#day.key, dayTotal: 0, month: this.#month.key, monthTotal: 0 };
      this.#spent.set(scope, spending);
    }
    if (period === 'day') {
      if (spending.day !== this.#day.key) {
        spending.day = this.#day.key;
        spending.dayTotal = 0;
      }
      spending.dayTotal += amount;
      return spending.dayTotal;
    }
    if (spending.month !== this.#month.key) {
      spending.month = this.#month.key;
      spending.monthTotal = 0;
    }
    spending.monthTotal += amount;
    return spending.monthTotal;
  }

  #advance(now: number): void {
    if (now >= this.#day.endsAt || now < this.#day.endsAt - 86_400_000) this.#day = periodOf('day', now);
    if (now >= this.#month.endsAt || now < this.#month.endsAt - 31 * 86_400_000)
      this.#month = periodOf('month', now);
  }
}
