import { describe, expect, it } from 'vitest';
import { parseRegion, regionBias, regionWeightAt, wordPositions } from '../src/decoding/index.js';

describe('paint-with-words rules', () => {
  it("finds a word's text positions as the built-in tokenizer places them ([BOS] first)", () => {
    expect(wordPositions('A cat and a dog', 'dog', 16)).toEqual([5]);
    expect(wordPositions('A cat and a dog', 'a', 16)).toEqual([1, 4]);
    expect(wordPositions('a red T-shirt', 't shirt', 16)).toEqual([3, 4]);
    expect(wordPositions('a red T-shirt', 'T-Shirt', 16)).toEqual([3, 4]);
    expect(() => wordPositions('a cat and a dog', 'dog', 5)).toThrow(/not a word of the prompt.*past the encoder's 5 tokens/);
    expect(() => wordPositions('a cat', 'bird', 16)).toThrow(/'bird' is not a word of the prompt 'a cat'/);
    expect(() => wordPositions('a cat', '!!', 16)).toThrow(/no letters or digits/);
  });

  it('biases the image tokens in a box toward the text tokens of its word, nothing else', () => {
    // 8×8 image, patch 4: a 2×2 token grid; L = 6 text tokens: [BOS] a cat and a dog
    const bias = regionBias({
      prompt: 'a cat and a dog',
      regions: [
        { word: 'cat', box: { x: 0, y: 0, w: 4, h: 8 } }, // left column: tokens 0, 2
        { word: 'dog', box: { x: 5, y: 5, w: 2, h: 2 } }, // token 3
      ],
      image: { width: 8, height: 8, patch: 4 },
      textLength: 6,
    });
    const rows = Array.from({ length: 4 }, (_, i) => Array.from(bias.subarray(i * 6, (i + 1) * 6)));
    expect(rows).toEqual([
      [0, 0, 1, 0, 0, 0],
      [0, 0, 0, 0, 0, 0],
      [0, 0, 1, 0, 0, 0],
      [0, 0, 0, 0, 0, 1],
    ]);
    expect(() => regionBias({ prompt: 'a cat', regions: [{ word: 'cat', box: { x: 6, y: 0, w: 4, h: 4 } }], image: { width: 8, height: 8, patch: 4 }, textLength: 6 })).toThrow();
  });

  it('weights the bias by strength · γ(t/T), falling over the steps', () => {
    expect(regionWeightAt(0, 4, 4)).toBe(4);
    expect(regionWeightAt(2, 4, 4)).toBeCloseTo(4 * Math.SQRT1_2, 12);
    expect(regionWeightAt(3, 4, 4)).toBeCloseTo(4 * Math.cos((3 * Math.PI) / 8), 12);
    expect(regionWeightAt(0, 1, 2)).toBe(2);
    expect(() => regionWeightAt(4, 4, 1)).toThrow(/step/);
    expect(() => regionWeightAt(0, 4, -1)).toThrow(/strength/);
  });

  it('parses word:x,y,w,h', () => {
    expect(parseRegion('cat:0,0,16,32')).toEqual({ word: 'cat', box: { x: 0, y: 0, w: 16, h: 32 } });
    expect(parseRegion('red apple: 1, 2, 3, 4')).toEqual({ word: 'red apple', box: { x: 1, y: 2, w: 3, h: 4 } });
    expect(() => parseRegion('0,0,4,4')).toThrow(/word:x,y,w,h/);
    expect(() => parseRegion(':0,0,4,4')).toThrow(/word is empty/);
    expect(() => parseRegion('cat:0,0,4')).toThrow(/word:x,y,w,h in whole pixels/);
  });
});
