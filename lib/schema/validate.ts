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

export interface ValidateFunction {
  (data: unknown): boolean;
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

/** Throws a code-7 CniError unless `data` satisfies `validator`. */
export function validateConf(validator: ValidateFunction, data: unknown, what: string): void {
  if (!validator(data)) {
    throw new CniError(ErrCode.InvalidConfig, `invalid ${what} configuration`, errorsText(validator.errors));
  }
}
