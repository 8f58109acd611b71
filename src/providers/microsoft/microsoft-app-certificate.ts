import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** The app's certificate credential as MSAL's `clientCertificate` wants it. */
export interface MicrosoftClientCertificate {
  kind: 'certificate';
  /** Hex SHA-256 of the certificate's DER (the `x5t#S256` of MSAL's client assertion), computed here. */
  thumbprintSha256: string;
  /** The private key, PKCS#8 PEM. */
  privateKeyPem: string;
  /** The certificate (PEM), e.g. for the sandbox to register. */
  certificatePem: string;
  /** When the certificate stops being valid (Entra refuses assertions of an expired one). */
  validTo: Date;
}

export class MicrosoftCertificateError extends Error {
  override readonly name = 'MicrosoftCertificateError';
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/**
 * Reads MICROSOFT_CLIENT_CERTIFICATE_PATH: one PEM file holding the private key (PKCS#8
 * `PRIVATE KEY`; a PKCS#1 `RSA PRIVATE KEY` is converted) and the certificate uploaded to the
 * Entra app. The SHA-256 thumbprint is computed from the certificate — the operator never types
 * it. Refused with a message naming what is wrong (and never the key): unreadable file, no or
 * several keys, an encrypted key, no certificate, a key that is not the certificate's, a non-RSA
 * key (Entra signs client assertions with RSA), a certificate not yet valid or expired.
 */
export function loadMicrosoftAppCertificate(path: string, now: Date = new Date()): MicrosoftClientCertificate {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new MicrosoftCertificateError(`cannot read the certificate file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return parseMicrosoftAppCertificate(text, now);
}

export function parseMicrosoftAppCertificate(pem: string, now: Date = new Date()): MicrosoftClientCertificate {
  const blocks = [...pem.matchAll(BLOCK)].map((m) => ({ label: m[1]!, text: m[0] }));
  if (blocks.some((b) => b.label === 'ENCRYPTED PRIVATE KEY')) throw new MicrosoftCertificateError('the private key is encrypted; store it unencrypted (PKCS#8) in a file only the service can read');
  const keys = blocks.filter((b) => b.label === 'PRIVATE KEY' || b.label === 'RSA PRIVATE KEY');
  if (keys.length !== 1) throw new MicrosoftCertificateError(`the file must hold exactly one private key (PEM "PRIVATE KEY"); found ${keys.length}`);
  const certs = blocks.filter((b) => b.label === 'CERTIFICATE');
  if (certs.length === 0) throw new MicrosoftCertificateError('the file holds no certificate (PEM "CERTIFICATE"); append the certificate uploaded to the Entra app');
  let key: KeyObject;
  try {
    key = createPrivateKey(keys[0]!.text);
  } catch {
    throw new MicrosoftCertificateError('the private key cannot be read');
  }
  if (key.asymmetricKeyType !== 'rsa') throw new MicrosoftCertificateError(`the private key is ${key.asymmetricKeyType ?? 'unknown'}; Microsoft Entra app certificates must be RSA`);
  // The certificate whose public key is this key's (a chain may follow it in the file).
  let cert: X509Certificate | undefined;
  for (const c of certs) {
    let x: X509Certificate;
    try {
      x = new X509Certificate(c.text);
    } catch {
      throw new MicrosoftCertificateError('a certificate in the file cannot be read');
    }
    if (x.checkPrivateKey(key)) {
      cert = x;
      break;
    }
  }
  if (!cert) throw new MicrosoftCertificateError('the private key does not belong to the certificate in the file');
  const validFrom = new Date(cert.validFrom);
  const validTo = new Date(cert.validTo);
  if (validFrom > now) throw new MicrosoftCertificateError(`the certificate is not valid before ${validFrom.toISOString()}`);
  if (validTo <= now) throw new MicrosoftCertificateError(`the certificate expired on ${validTo.toISOString()}; upload a new one to the Entra app and point the setting at it`);
  return {
    kind: 'certificate',
    thumbprintSha256: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
    privateKeyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certificatePem: cert.toString(),
    validTo,
  };
}
