// npm here cannot resolve rust-just's packages for other platforms (the registry answers 404), so
// `npm install` leaves them out of the lock file and `npm ci` then refuses it. Run this after every
// `npm install` to add their lock entries back; npm skips them on this platform anyway.
import { readFileSync, writeFileSync } from 'node:fs';
const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
const plat = {
  'darwin-arm64': ['darwin', 'arm64'], 'darwin-x64': ['darwin', 'x64'], 'linux-arm': ['linux', 'arm'], 'linux-arm64': ['linux', 'arm64'],
  'linux-armv7': ['linux', 'arm'], 'linux-loong64': ['linux', 'loong64'], 'linux-riscv64': ['linux', 'riscv64'],
  'windows-arm64': ['win32', 'arm64'], 'windows-x64': ['win32', 'x64'],
};
for (const [name, [os, cpu]] of Object.entries(plat)) {
  const key = `node_modules/rust-just-${name}`;
  lock.packages[key] ??= { version: '1.57.0', cpu: [cpu], dev: true, license: 'CC0-1.0', optional: true, os: [os] };
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
writeFileSync('package-lock.json', JSON.stringify(lock, null, 2) + '\n');
