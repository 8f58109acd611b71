import { generate } from 'selfsigned';

export interface SelfSignedCertificate {
  certPem: string;
  /** PKCS#8 PEM of the certificate's private key (the given one, or a new one). */
  keyPem: string;
}

export interface SelfSignedOptions {
  commonName: string;
  /** subjectAltName entries: IP addresses and DNS names. */
  ips?: string[];
  dnsNames?: string[];
  /** basicConstraints CA:TRUE (critical), so a client can trust the certificate itself as its CA. */
  ca?: boolean;
  /** Certify this key pair (PEM: PKCS#8 private, SPKI public) instead of generating one. */
  keyPair?: { privateKeyPem: string; publicKeyPem: string };
  notBefore?: Date;
  notAfter?: Date;
}

/**
 * The one self-signed X.509 generator of the stand-ins, on `selfsigned` (node's crypto reads
 * certificates but cannot issue them). Used for the Microsoft stand-in's TLS (MSAL accepts only
 * https authorities) and for the certificates Google serves at /oauth2/v1/certs.
 */
export async function selfSignedCertificate(o: SelfSignedOptions): Promise<SelfSignedCertificate> {
  const altNames = [...(o.ips ?? []).map((ip) => ({ type: 7 as const, ip })), ...(o.dnsNames ?? []).map((value) => ({ type: 2 as const, value }))];
  const pems = await generate([{ name: 'commonName', value: o.commonName }], {
    algorithm: 'sha256',
    ...(o.keyPair ? { keyPair: { privateKey: o.keyPair.privateKeyPem, publicKey: o.keyPair.publicKeyPem } } : { keyType: 'ec' as const, curve: 'P-256' as const }),
    notBeforeDate: o.notBefore ?? new Date(Date.now() - 3600_000),
    notAfterDate: o.notAfter ?? new Date(Date.now() + 2 * 86_400_000),
    extensions: [
      ...(o.ca ? [{ name: 'basicConstraints' as const, cA: true, critical: true }] : []),
      ...(altNames.length > 0 ? [{ name: 'subjectAltName' as const, altNames }] : []),
    ],
  });
  return { certPem: pems.cert, keyPem: pems.private };
}
