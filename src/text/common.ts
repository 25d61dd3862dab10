/** Constants shared by the text encoders (kept apart from encoder.ts so that no module cycle forms). */

/** The score added to attention logits for a padded key. */
export const PAD_BIAS = -1e9;

/** Every saved text encoder folder has this file, with `"kind": "builtin" | "pretrained"`. */
export const TEXT_CONFIG_FILE = 'config.json';
