/**
 * Every test file starts on the backend named by MASKGEN_TEST_BACKEND (default wasm), so the whole
 * suite can be run on each engine: `MASKGEN_TEST_BACKEND=onnx npm test`.
 */
import { beforeAll } from 'vitest';
import { initBackend, type BackendChoice } from '../src/backend/index.js';

beforeAll(async () => {
  await initBackend((process.env.MASKGEN_TEST_BACKEND ?? 'wasm') as BackendChoice);
});
