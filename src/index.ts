/** The library API of dbt, for scripting from JavaScript. */
export { VERSION } from './version.js';
export * from './errors.js';
