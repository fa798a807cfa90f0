// Byte order of this machine (float64 typed arrays are host order; files and snapshots are little-endian).
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
