/**
 * Config validation with ajv validators compiled at build time (lib/generated/validators.js,
 * written by build.mjs from each plugin's schema.json). Failures are CNI code 7 with every
 * problem listed in `details`.
 */
import { CniError, ErrCode } from '../skel/errors';

export interface AjvError {
  instancePath: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** A compiled validator: a type guard for the config its schema describes (lib/schema/types.ts). */
export interface ValidateFunction<T = unknown> {
  (data: unknown): data is T;
  errors?: AjvError[] | null;
}

/** Formats ajv errors as `conf.bridge must be string, conf.mtu must be >= 68`. */
export function errorsText(errors: AjvError[] | null | undefined): string {
  if (!errors || errors.length === 0) return 'invalid';
  return errors
    .map((e) => {
      // instancePath is a JSON pointer: '/' separates keys, and '~1'/'~0' escape '/' and '~' in them.
      const where = ['conf', ...e.instancePath.split('/').slice(1).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'))].join('.');
      const extra = e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : '';
      const allowed = e.params && 'allowedValues' in e.params ? `: ${JSON.stringify(e.params.allowedValues)}` : '';
      return `${where} ${e.message ?? 'is invalid'}${extra}${allowed}`;
    })
    .join(', ');
}

/**
 * Throws a code-7 CniError unless `data` satisfies `validator`; after it returns, `data` also has
 * the schema's type (an intersection: a NetConf stays a NetConf). The problems go in `details`; `detailsInMessage` also appends them to the
 * message (host-local's wording: a plugin that delegates to it shows only the message).
 */
export function validateConf<D, T>(validator: ValidateFunction<T>, data: D, what: string, opts: { detailsInMessage?: boolean } = {}): asserts data is D & T {
  if (!validator(data)) {
    const details = errorsText(validator.errors);
    throw new CniError(ErrCode.InvalidConfig, `invalid ${what} configuration${opts.detailsInMessage ? `: ${details}` : ''}`, details);
  }
}
