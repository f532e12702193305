export { prepImages, PIPELINE_VERSION } from './prep.js';
export type { PrepEvent, PrepHooks, PrepImageResult, PrepReport, PrepStatus } from './prep.js';
export { PREP_DEFAULTS, FITS, parseColour, validatePrepOptions, withPrepDefaults, defaultConcurrency } from './options.js';
export type { Fit, PrepOptions, Rgb } from './options.js';
export { formatPrepReport } from './report.js';
export { MANIFEST_NAME } from './manifest.js';
export type { Manifest, ManifestEntry, PrepWarning, PrepWarningCode, SubjectInfo } from './manifest.js';
export { defaultSegModelPath, SEG_MODEL_URL } from './segment.js';
export { checkRawDirs, prepJobsFromSpec, type PrepJob } from './spec.js';
