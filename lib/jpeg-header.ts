/**
 * Which JPEG files the addon may decode itself (native/preprocess/jpeg_decode.h, libjpeg-turbo)
 * with the pixels sharp would give: 8-bit baseline, extended or progressive Huffman JPEGs with
 * 1 or 3 components, no EXIF orientation other than 1 (sharp rotates, cv2.imread too), within
 * sharp's pixel limit. Reads the markers up to the first scan; anything else, or anything
 * unclear (a second frame or EXIF block, a malformed EXIF block, a marker out of place), goes to
 * sharp, which decides what the file gives. Never throws.
 */

/** The frame header of a JPEG the addon can decode. */
export interface JpegFrame {
  width: number;
  height: number;
  components: 1 | 3;
}

/** sharp's default limitInputPixels (0x3FFF * 0x3FFF): larger images are its error to give. */
export const SHARP_PIXEL_LIMIT = 0x3fff * 0x3fff;

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const APP1 = 0xe1;
/** Baseline, extended sequential and progressive Huffman frames. */
const HUFFMAN_8BIT_SOF = new Set([0xc0, 0xc1, 0xc2]);
/** Every other frame type (lossless, hierarchical, arithmetic): sharp's. */
const OTHER_SOF = new Set([0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

/** The frame of `bytes` when the addon should decode it, else null. */
export function nativeJpegFrame(bytes: Uint8Array): JpegFrame | null {
  const n = bytes.length;
  if (n < 4 || bytes[0] !== 0xff || bytes[1] !== SOI) return null;
  let frame: JpegFrame | null = null;
  let exifSeen = false;
  let pos = 2;
  for (;;) {
    if (pos >= n || bytes[pos] !== 0xff) return null;
    while (pos < n && bytes[pos] === 0xff) pos++; // fill bytes
    if (pos + 3 > n) return null;
    const marker = bytes[pos] as number;
    pos++;
    // Markers without a length (TEM, RSTn, SOI, EOI) do not belong before the first scan.
    if (marker === 0x00 || marker === 0x01 || (marker >= 0xd0 && marker <= EOI)) return null;
    const len = ((bytes[pos] as number) << 8) | (bytes[pos + 1] as number);
    if (len < 2 || pos + len > n) return null;
    const seg = bytes.subarray(pos + 2, pos + len);
    if (marker === SOS) return frame;
    if (OTHER_SOF.has(marker)) return null;
    if (HUFFMAN_8BIT_SOF.has(marker)) {
      if (frame !== null) return null;
      frame = readFrame(seg);
      if (frame === null) return null;
    } else if (marker === APP1 && isExif(seg)) {
      // "Exif" without its two zero bytes: libexif may still read it; sharp decides.
      if (exifSeen || seg[4] !== 0 || seg[5] !== 0) return null;
      exifSeen = true;
      const orientation = exifOrientation(seg.subarray(6));
      if (orientation === undefined || (orientation !== null && orientation !== 1)) return null;
    }
    pos += len;
  }
}

function readFrame(seg: Uint8Array): JpegFrame | null {
  if (seg.length < 6) return null;
  const precision = seg[0] as number;
  const height = ((seg[1] as number) << 8) | (seg[2] as number);
  const width = ((seg[3] as number) << 8) | (seg[4] as number);
  const components = seg[5] as number;
  if (precision !== 8 || (components !== 1 && components !== 3)) return null;
  if (seg.length < 6 + 3 * components) return null;
  // Height 0 means a DNL marker gives it later; libvips and libjpeg-turbo do not take those.
  if (width === 0 || height === 0 || width * height > SHARP_PIXEL_LIMIT) return null;
  return { width, height, components };
}

function isExif(seg: Uint8Array): boolean {
  return (
    seg.length >= 6 &&
    seg[0] === 0x45 && // E
    seg[1] === 0x78 && // x
    seg[2] === 0x69 && // i
    seg[3] === 0x66 // f
  );
}

/**
 * The Orientation (tag 0x0112) of IFD0 of a TIFF structure: its value, null when IFD0 has no
 * such tag, undefined when the structure is malformed or the tag is not one SHORT.
 */
export function exifOrientation(tiff: Uint8Array): number | null | undefined {
  if (tiff.length < 8) return undefined;
  let little: boolean;
  if (tiff[0] === 0x49 && tiff[1] === 0x49) little = true;
  else if (tiff[0] === 0x4d && tiff[1] === 0x4d) little = false;
  else return undefined;
  const u16 = (o: number) =>
    little
      ? (tiff[o] as number) | ((tiff[o + 1] as number) << 8)
      : ((tiff[o] as number) << 8) | (tiff[o + 1] as number);
  const u32 = (o: number) => (little ? u16(o) + u16(o + 2) * 65536 : u16(o) * 65536 + u16(o + 2));
  if (u16(2) !== 42) return undefined;
  const ifd = u32(4);
  if (ifd < 8 || ifd + 2 > tiff.length) return undefined;
  const count = u16(ifd);
  if (ifd + 2 + 12 * count > tiff.length) return undefined;
  for (let i = 0; i < count; i++) {
    const e = ifd + 2 + 12 * i;
    if (u16(e) !== 0x0112) continue;
    if (u16(e + 2) !== 3 || u32(e + 4) !== 1) return undefined;
    return u16(e + 8);
  }
  return null;
}
