/** Options every backend takes (kept apart from index.ts, which imports the backends, so that no module cycle forms). */
export interface BackendOptions {
  /** Intra-op threads for engines that have them (onnx). Default: all cores. */
  threads?: number;
}
