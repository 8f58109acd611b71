import { describe, expect, it } from 'vitest';
import { describeThrown } from './thrown.js';

describe('describeThrown', () => {
  it("gives an Error's message, or a string, as one line", () => {
    expect(describeThrown(new Error('disk full\nat line 2'))).toBe('disk full');
    expect(describeThrown('plain\nsecond')).toBe('plain');
  });

  it('names a thrown object that is not an Error instead of printing [object Object]', () => {
    // What PGlite's file system (Emscripten) throws: an ErrnoError with a name and an errno, no message.
    class ErrnoError {
      name = 'ErrnoError';
      constructor(readonly errno: number) {}
    }
    expect(describeThrown(new ErrnoError(20))).toBe('ErrnoError 20');
    expect(describeThrown({ message: 'from an object' })).toBe('from an object');
    expect(describeThrown({ secret: 'never shown' })).toBe('Object');
    expect(describeThrown(Object.create(null))).toBe('object');
    expect(describeThrown(new Error(''))).toBe('Error');
    expect(describeThrown(42)).toBe('42');
  });
});
