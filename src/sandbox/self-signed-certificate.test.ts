import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { selfSignedCertificate } from './self-signed-certificate.js';

describe('selfSignedCertificate', () => {
  it('issues a loopback TLS certificate that names 127.0.0.1 and localhost and can act as its own CA', async () => {
    const { certPem, keyPem } = await selfSignedCertificate({ commonName: '127.0.0.1', ips: ['127.0.0.1'], dnsNames: ['localhost'], ca: true });
    const cert = new X509Certificate(certPem);
    expect(cert.subjectAltName).toBe('IP Address:127.0.0.1, DNS:localhost');
    expect(cert.ca).toBe(true);
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(keyPem).toContain('PRIVATE KEY');
  });

  it('certifies a given key pair with the given validity (the Google signing key)', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const notBefore = new Date('2026-01-01T00:00:00Z');
    const notAfter = new Date('2026-01-15T00:00:00Z');
    const { certPem } = await selfSignedCertificate({
      commonName: 'federated-signon.system.gserviceaccount.com',
      keyPair: { privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() },
      notBefore,
      notAfter,
    });
    const cert = new X509Certificate(certPem);
    expect(cert.publicKey.export({ type: 'spki', format: 'der' }).equals(publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
    expect(cert.subject).toBe('CN=federated-signon.system.gserviceaccount.com');
    expect(new Date(cert.validFrom).toISOString()).toBe(notBefore.toISOString());
    expect(new Date(cert.validTo).toISOString()).toBe(notAfter.toISOString());
    expect(cert.ca).toBe(false);
  });
});
