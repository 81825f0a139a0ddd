/**
 * The OpenCV oracle of the decode and resize tests: a Python with cv2 and numpy (Debian's
 * python3-opencv; $PIF_PYTHON_CV2 names another) and the sample photos of opencv-doc
 * ($PIF_PHOTOS names another directory).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';

import { requireFixtures } from './fixtures.js';

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

/**
 * The oracle (a Python with cv2 and numpy, and at least 30 photos), or null after skipping the
 * test (failing it with PIF_REQUIRE_FIXTURES=1).
 */
export function needOpencvOracle(t: TestContext): { py: string; photos: string[] } | null {
  const py = findPythonCv2();
  const photos = listPhotos();
  const missing =
    py === null
      ? 'no python3 with cv2 + numpy (install the Debian package python3-opencv)'
      : photos.length < 30
        ? `fewer than 30 photos in ${PHOTOS} (install opencv-doc or set PIF_PHOTOS)`
        : null;
  if (py === null || missing !== null) {
    if (requireFixtures) assert.fail(`PIF_REQUIRE_FIXTURES=1 but ${missing ?? ''}`);
    t.skip(missing ?? '');
    return null;
  }
  return { py, photos };
}
