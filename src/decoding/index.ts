/** Parallel decoding (MaskGIT / Muse), classifier-free guidance and editing, as pure, backend-independent code. */
export * from './schedules.js';
export * from './guidance.js';
export * from './sampling.js';
export * from './parallel-decode.js';
export * from './regions.js';
export * from './editing.js';
export * from './variations.js';
export * from './paint-with-words.js';
export * from './autoregressive.js';
