// The SnapshotError decodeSnapshot throws for bytes it must refuse (fails the test if it throws anything else or
// accepts them): shared by the snapshot tests.
import { SnapshotError } from '../../src/index.js';
import { decodeSnapshot } from '../../src/codec/index.js';

export function snapshotRefusal(bytes: Uint8Array): SnapshotError {
  try {
    decodeSnapshot(bytes);
  } catch (e) {
    if (e instanceof SnapshotError) return e;
    throw new Error(`expected a SnapshotError, got ${String(e)}`);
  }
  throw new Error('expected a SnapshotError, but the bytes were accepted');
}
