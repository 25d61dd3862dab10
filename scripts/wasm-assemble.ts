/** WebAssembly text to bytes with wabt (a dev dependency), SIMD on: for scripts/build-wasm.ts and its test. */
import wabtInit from 'wabt';

export async function assembleSimdWat(source: string): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const mod = wabt.parseWat('simd.wat', source, { simd: true });
  try {
    mod.validate();
    return mod.toBinary({}).buffer;
  } finally {
    mod.destroy();
  }
}
