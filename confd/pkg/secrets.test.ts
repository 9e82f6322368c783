import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileSecretResolver } from './secrets.js';

const dir = mkdtempSync(join(tmpdir(), 'tortie-secrets-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('reads <dir>/<secret>/<key> exactly, as a mounted Kubernetes Secret', () => {
  mkdirSync(join(dir, 'bgp-secrets'));
  writeFileSync(join(dir, 'bgp-secrets', 'tor'), 'tor pass #2');
  writeFileSync(join(dir, 'bgp-secrets', 'nl'), 'with-newline\n');
  // Kubernetes mounts keys as symlinks into a ..data directory.
  mkdirSync(join(dir, 'bgp-secrets', '..data'));
  writeFileSync(join(dir, 'bgp-secrets', '..data', 'mesh'), 'mesh-pass');
  symlinkSync('..data/mesh', join(dir, 'bgp-secrets', 'mesh'));
  const r = fileSecretResolver(dir);
  assert.equal(r('bgp-secrets', 'tor'), 'tor pass #2');
  assert.equal(r('bgp-secrets', 'nl'), 'with-newline\n', 'no trimming');
  assert.equal(r('bgp-secrets', 'mesh'), 'mesh-pass');
  // Not found: undefined, and where it looked.
  assert.equal(r('bgp-secrets', 'nope'), undefined);
  assert.equal(r('other', 'tor'), undefined);
  assert.equal(r.where?.('other', 'tor'), `no file ${join(dir, 'other', 'tor')} (TORTIE_BGP_SECRETS_DIR=${dir})`);
});

test('names that are not Secret names or keys are refused (no path tricks)', () => {
  const r = fileSecretResolver(dir);
  assert.throws(() => r('..', 'tor'), /"\.\." is not a Kubernetes Secret name/);
  assert.throws(() => r('bgp-secrets', '..'), /"\.\." is not a Kubernetes Secret key/);
  assert.throws(() => r('a/b', 'k'), /is not a Kubernetes Secret name/);
  assert.throws(() => r('bgp-secrets', 'a/b'), /is not a Kubernetes Secret key/);
  assert.throws(() => r('Upper', 'k'), /is not a Kubernetes Secret name/);
});

test('a directory where the key should be is a read error, not "not found"', () => {
  mkdirSync(join(dir, 'dirsecret', 'k'), { recursive: true });
  assert.throws(() => fileSecretResolver(dir)('dirsecret', 'k'), /cannot read .*dirsecret\/k: EISDIR/);
});

test('without a directory nothing resolves, and the reason names TORTIE_BGP_SECRETS_DIR', () => {
  const r = fileSecretResolver(undefined);
  assert.equal(r('bgp-secrets', 'tor'), undefined);
  assert.equal(r.where?.('bgp-secrets', 'tor'), 'TORTIE_BGP_SECRETS_DIR is not set, so tortie-node has no secrets to read');
});
