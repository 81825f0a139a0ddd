/**
 * The OpenCV oracle of the decode and resize tests: a Python with cv2 and numpy (Debian's
 * python3-opencv; $PIF_PYTHON_CV2 names another) and the sample photos of opencv-doc
 * ($PIF_PHOTOS names another directory).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

export const PHOTOS = process.env['PIF_PHOTOS'] ?? '/usr/share/doc/opencv-doc/examples/data';

/** A Python with cv2 and numpy, or null. */
export function findPythonCv2(): string | null {
  for (const py of [process.env['PIF_PYTHON_CV2'], '/usr/bin/python3', 'python3']) {
    if (py === undefined) continue;
    if (spawnSync(py, ['-c', 'import cv2, numpy'], { encoding: 'utf8' }).status === 0) return py;
  }
  return null;
}

/** The JPEG and PNG files of PHOTOS, sorted by name; [] when it cannot be read. */
export function listPhotos(): string[] {
  try {
    return readdirSync(PHOTOS)
      .filter((f) => /\.(jpe?g|png)$/i.test(f))
      .sort()
      .map((f) => path.join(PHOTOS, f));
  } catch {
    return [];
  }
}
