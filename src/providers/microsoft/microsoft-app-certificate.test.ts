import { createHash, createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/config.js';
import { selfSignedCertificate } from '../../sandbox/self-signed-certificate.js';
import { loadMicrosoftAppCertificate, parseMicrosoftAppCertificate } from './microsoft-app-certificate.js';

function rsaKeyPair() {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

let dir: string;
let good: { certPem: string; keyPem: string };
let other: { certPem: string; keyPem: string };

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'mbc-ms-cert-'));
  good = await selfSignedCertificate({ commonName: 'connector-app', keyPair: rsaKeyPair(), notAfter: new Date(Date.now() + 365 * 86_400_000) });
  other = await selfSignedCertificate({ commonName: 'another-app', keyPair: rsaKeyPair() });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text, { mode: 0o600 });
  return p;
}

describe('MICROSOFT_CLIENT_CERTIFICATE_PATH: the app certificate credential', () => {
  it('reads the key and the certificate from one PEM (either order) and computes the SHA-256 thumbprint from the certificate', () => {
    const expected = createHash('sha256').update(new X509Certificate(good.certPem).raw).digest('hex');
    for (const text of [`${good.keyPem}\n${good.certPem}`, `${good.certPem}\n${good.keyPem}`]) {
      const c = loadMicrosoftAppCertificate(file('app.pem', text));
      expect(c.thumbprintSha256).toBe(expected);
      expect(c.privateKeyPem).toContain('-----BEGIN PRIVATE KEY-----');
      expect(new X509Certificate(c.certificatePem).checkPrivateKey(createPrivateKey(c.privateKeyPem))).toBe(true);
    }
    // A PKCS#1 key ("RSA PRIVATE KEY", what older openssl writes) is converted to PKCS#8 for MSAL.
    const pkcs1 = createPrivateKey(good.keyPem).export({ type: 'pkcs1', format: 'pem' }).toString();
    expect(parseMicrosoftAppCertificate(`${pkcs1}${good.certPem}`).privateKeyPem).toContain('-----BEGIN PRIVATE KEY-----');
  });

  it('refuses, naming the problem and never the key: unreadable, mismatched, incomplete, encrypted, not RSA, expired', async () => {
    expect(() => loadMicrosoftAppCertificate(path.join(dir, 'missing.pem'))).toThrow(/cannot read the certificate file \(ENOENT\)/);
    expect(() => parseMicrosoftAppCertificate(`${other.keyPem}${good.certPem}`)).toThrow(/does not belong to the certificate/);
    expect(() => parseMicrosoftAppCertificate(good.keyPem)).toThrow(/no certificate/);
    expect(() => parseMicrosoftAppCertificate(good.certPem)).toThrow(/exactly one private key.*found 0/);
    expect(() => parseMicrosoftAppCertificate(`${good.keyPem}${other.keyPem}${good.certPem}`)).toThrow(/found 2/);
    const encrypted = createPrivateKey(good.keyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }).toString();
    expect(() => parseMicrosoftAppCertificate(`${encrypted}${good.certPem}`)).toThrow(/encrypted/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    expect(() => parseMicrosoftAppCertificate(`${ec.privateKey}${good.certPem}`)).toThrow(/is ec; Microsoft Entra app certificates must be RSA/);
    const expired = await selfSignedCertificate({ commonName: 'old', keyPair: rsaKeyPair(), notBefore: new Date(Date.now() - 3 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
    expect(() => parseMicrosoftAppCertificate(`${expired.keyPem}${expired.certPem}`)).toThrow(/expired on/);
    expect(() => parseMicrosoftAppCertificate(`${other.keyPem}${good.certPem}`)).not.toThrow(/PRIVATE KEY|MII/);
  });

  it('is validated at start: a bad file is a ConfigError naming the variable; a certificate stands in for the secret', () => {
    const refuse = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('accepted');
    };
    const bad = refuse({ MICROSOFT_CLIENT_ID: 'id', MICROSOFT_CLIENT_CERTIFICATE_PATH: file('mismatch.pem', `${other.keyPem}${good.certPem}`) });
    expect(bad).toBeInstanceOf(ConfigError);
    expect(bad.variable).toBe('MICROSOFT_CLIENT_CERTIFICATE_PATH');
    expect(bad.message).toMatch(/does not belong to the certificate/);
    expect(refuse({ MICROSOFT_CLIENT_ID: 'id' }).variable).toBe('MICROSOFT_CLIENT_SECRET');
    const ok = loadConfig({ MICROSOFT_CLIENT_ID: 'id', MICROSOFT_CLIENT_CERTIFICATE_PATH: file('ok.pem', `${good.keyPem}${good.certPem}`) });
    expect(ok.microsoft).toMatchObject({ clientId: 'id', clientSecret: undefined, clientCertificatePath: path.join(dir, 'ok.pem') });
    // Only the path is in the configuration, never the key.
    expect(JSON.stringify(ok)).not.toContain('PRIVATE KEY');
  });
});
