// The implementation lives in core/ so that redis/ (a lower layer than
// limiter/) can word Redis denials with the same function.
export { denialOf } from '../core/denial.js';
