import type { ModelPrice } from '../config';

/** Token or unit counts by usage type, e.g. `{ input: 812, output: 96 }`. */
export type Usage = Record<string, number>;

/** Cost in USD by usage type, plus `total`. */
export type Cost = Record<string, number>;

/**
 * What may follow a price's key in a model name that is a version of that model: a date or
 * snapshot number of three digits or more (`-2024-08-06`, `-0613`, `-002`, Bedrock's
 * `-20240620-v1:0`), a tag (`:8b`, `@20241022`) or `-latest`. Anything else (`gpt-4o-mini` after
 * `gpt-4o`, `gpt-4-32k` or `gpt-4.1` after `gpt-4`, `claude-3-5-haiku` after `claude-3`) is
 * another model, at another price.
 */
const VERSION_SUFFIX = /^(?:[-_]\d{3,}(?:-\d\d-\d\d)?(?:-v\d+(?::\d+)?)?$|[:@]|-latest$)/;

/**
 * The price entry for `model`: an exact match, else the longest key of which `model` is a
 * version, else the longest key ending in a separator (`gpt-4o-`, `openai/`) that `model` starts with.
 */
export const findPrice = (prices: Record<string, ModelPrice>, model: string): ModelPrice | undefined => {
  const exact = prices[model];
  if (exact) return exact;
  let best: string | undefined;
  for (const key of Object.keys(prices)) {
    if (model.startsWith(key) && (/[-_:@/.]$/.test(key) || VERSION_SUFFIX.test(model.slice(key.length))) && (best === undefined || key.length > best.length)) best = key;
  }
  return best === undefined ? undefined : prices[best];
};

/**
 * The base usage type a type counts toward: `input` and `output` themselves, and their details
 * (`input_cached_tokens`, `input_cache_read`, `output_reasoning_tokens`…, Langfuse's naming).
 */
export const baseUsageType = (type: string): 'input' | 'output' | undefined =>
  type === 'input' || type.startsWith('input_') ? 'input' : type === 'output' || type.startsWith('output_') ? 'output' : undefined;

/**
 * Cost of `usage` at `price` (USD per unit of each usage type). A detail type without a price of
 * its own (cached input, say) is charged at the price of its base type, `input` or `output`, as
 * it was before it was counted apart. Other types without a price are left out; `total` is the
 * sum. Returns undefined when nothing could be priced.
 */
export const computeCost = (usage: Usage, price: ModelPrice): Cost | undefined => {
  const cost: Cost = {};
  let total = 0;
  let priced = false;
  for (const [type, amount] of Object.entries(usage)) {
    if (type === 'total') continue;
    const base = baseUsageType(type);
    const unit = price[type] ?? (base && price[base]);
    if (unit === undefined || !Number.isFinite(amount)) continue;
    // Round to 1e-12 USD so float noise (0.1 + 0.2) does not show in the stored value.
    const c = Math.round(amount * unit * 1e12) / 1e12;
    cost[type] = c;
    total += c;
    priced = true;
  }
  if (!priced) return undefined;
  cost.total = Math.round(total * 1e12) / 1e12;
  return cost;
};
