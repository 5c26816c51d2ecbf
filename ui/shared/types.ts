/** The JSON the pages read (docs/http-interface.md, openapi/admin.yaml), as far as the pages use it. */

/** One window or quota: `GET /_quotagate/usage` and `GET /admin/subjects/{id}/usage`. */
export interface PolicyUsage {
  readonly name: string;
  readonly kind: 'window' | 'quota';
  readonly window: string;
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  readonly reset_seconds: number;
  readonly reset_at: string | null;
  readonly percent: number;
  readonly included?: number;
  readonly overage?: number;
}

export interface CreditBalance {
  readonly metric: string;
  readonly balance: number;
}

export interface UsageBody {
  readonly plan: string;
  readonly subject?: string;
  readonly policies: readonly PolicyUsage[];
  readonly credits?: readonly CreditBalance[];
}

/** One period of one name (`requests` or a metric) of the usage ledger. */
export interface HistoryItem {
  readonly period_start: string;
  readonly period_end: string;
  readonly name: string;
  readonly used: number;
  readonly included: number;
  readonly overage: number;
  readonly credits: number;
}

export interface HistoryBody {
  readonly granularity: string;
  readonly items: readonly HistoryItem[];
  readonly next_cursor: string | null;
}

/** One plan of `GET /_quotagate/plans`. */
export interface CataloguePlan {
  readonly name: string;
  readonly display_name: string;
  readonly upgrade_url: string | null;
}

export interface PlanCatalogue {
  readonly plans: readonly CataloguePlan[];
}
