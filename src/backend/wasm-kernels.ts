/** Kernels registered for the wasm backend (placeholder: being written). */
export function registerWasmKernels(): void {}
