// Lab certificates for tests and the TLS fault lab, built with node-forge (no openssl binary).
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import forge from "node-forge";

export interface Pem { cert: string; key: string }

export interface LabPki {
  /** a lab certificate authority (self-signed, CA:true) */
  ca: Pem;
  /** a server certificate signed by the lab CA, valid now, for the given names */
  server: Pem;
  /** signed by the lab CA but expired (notBefore 30 days ago, notAfter 1 day ago) */
  expired: Pem;
  /** self-signed, not issued by the lab CA: untrusted by a client that trusts only the lab CA */
  untrusted: Pem;
}

export interface PkiFiles {
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  expiredCertFile: string;
  expiredKeyFile: string;
  untrustedCertFile: string;
  untrustedKeyFile: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** The names on a lab server certificate unless createLabPki is given others. */
export const LAB_SERVER_NAMES = ["localhost", "127.0.0.1", "::1"];
const DEFAULT_DAYS = 365;
const SERVER_CN = "catprobe lab server";
const CA_CN = "catprobe lab CA";
const UNTRUSTED_CN = "catprobe untrusted server";

// Key generation dominates the cost (forge uses Node's native RSA when it can, pure JS otherwise),
// so each process makes two key pairs once: one for the CA, one shared by every leaf certificate.
let caKeys: forge.pki.rsa.KeyPair | undefined;
let leafKeys: forge.pki.rsa.KeyPair | undefined;

function keyPairs(): { ca: forge.pki.rsa.KeyPair; leaf: forge.pki.rsa.KeyPair } {
  caKeys ??= forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
  leafKeys ??= forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
  return { ca: caKeys, leaf: leafKeys };
}

/**
 * A random 128-bit serial. The first hex digit is 1..7: below 8 keeps the DER integer positive,
 * non-zero keeps its encoding minimal (no leading zero byte).
 */
function randomSerial(): string {
  const bytes = randomBytes(16);
  return (1 + (bytes[0]! % 7)).toString(16) + bytes.toString("hex").slice(1);
}

function subjectOf(commonName: string): forge.pki.CertificateField[] {
  return [
    { name: "commonName", value: commonName },
    { name: "organizationName", value: "catprobe lab" },
  ];
}

/** subjectAltName entries: type 7 (iPAddress) for IPv4/IPv6 literals, type 2 (dNSName) otherwise. */
function altNames(names: string[]): { type: number; value?: string; ip?: string }[] {
  return names.map((name) => (isIP(name) ? { type: 7, ip: name } : { type: 2, value: name }));
}

interface CertSpec {
  commonName: string;
  publicKey: forge.pki.rsa.PublicKey;
  notBefore: Date;
  notAfter: Date;
  extensions: object[];
  issuer?: forge.pki.Certificate; // absent: self-signed
  signingKey: forge.pki.rsa.PrivateKey;
}

function buildCert(spec: CertSpec): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = spec.publicKey;
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = spec.notBefore;
  cert.validity.notAfter = spec.notAfter;
  cert.setSubject(subjectOf(spec.commonName));
  cert.setIssuer(spec.issuer ? spec.issuer.subject.attributes : subjectOf(spec.commonName));
  cert.setExtensions(spec.extensions);
  cert.sign(spec.signingKey, forge.md.sha256.create());
  return cert;
}

function leafExtensions(names: string[], issuer?: forge.pki.Certificate): object[] {
  const extensions: object[] = [
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true, clientAuth: true }, // also a client certificate for mutual TLS
    { name: "subjectAltName", altNames: altNames(names) },
    { name: "subjectKeyIdentifier" },
  ];
  if (issuer) {
    const keyIdentifier = issuer.generateSubjectKeyIdentifier().getBytes();
    extensions.push({ name: "authorityKeyIdentifier", keyIdentifier });
  }
  return extensions;
}

function toPem(cert: forge.pki.Certificate, key: forge.pki.rsa.PrivateKey): Pem {
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(key) };
}

/** names: DNS names and IP addresses for subjectAltName (default ["localhost", "127.0.0.1", "::1"]). */
export function createLabPki(options: { names?: string[]; days?: number; commonName?: string } = {}): LabPki {
  const names = options.names ?? LAB_SERVER_NAMES;
  const days = options.days ?? DEFAULT_DAYS;
  const commonName = options.commonName ?? SERVER_CN;
  const keys = keyPairs();
  const now = Date.now();
  // Back-date "valid now" certificates a little so small clock skew between processes never matters.
  const validFrom = new Date(now - 60 * 60 * 1000);
  const validTo = new Date(now + days * DAY_MS);

  // The CA also covers the expired leaf's whole validity, so only the leaf's own dates make it fail.
  const caCert = buildCert({
    commonName: CA_CN,
    publicKey: keys.ca.publicKey,
    notBefore: new Date(now - 31 * DAY_MS),
    notAfter: new Date(now + (days + 1) * DAY_MS),
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      { name: "subjectKeyIdentifier" },
    ],
    signingKey: keys.ca.privateKey,
  });
  const leaf = (cn: string, notBefore: Date, notAfter: Date, issuer?: forge.pki.Certificate) =>
    buildCert({
      commonName: cn,
      publicKey: keys.leaf.publicKey,
      notBefore,
      notAfter,
      extensions: leafExtensions(names, issuer),
      issuer,
      signingKey: issuer ? keys.ca.privateKey : keys.leaf.privateKey,
    });

  const server = leaf(commonName, validFrom, validTo, caCert);
  const expired = leaf(commonName, new Date(now - 30 * DAY_MS), new Date(now - DAY_MS), caCert);
  const untrusted = leaf(UNTRUSTED_CN, validFrom, validTo);
  return {
    ca: toPem(caCert, keys.ca.privateKey),
    server: toPem(server, keys.leaf.privateKey),
    expired: toPem(expired, keys.leaf.privateKey),
    untrusted: toPem(untrusted, keys.leaf.privateKey),
  };
}

/** Writes the lab PKI as PEM files under dir (created if missing); private keys are owner-only. */
export function writePkiFiles(dir: string, pki: LabPki): PkiFiles {
  mkdirSync(dir, { recursive: true });
  const write = (name: string, text: string, mode = 0o644): string => {
    const file = join(dir, name);
    writeFileSync(file, text, { mode });
    return file;
  };
  return {
    caFile: write("ca.pem", pki.ca.cert),
    serverCertFile: write("server.pem", pki.server.cert),
    serverKeyFile: write("server-key.pem", pki.server.key, 0o600),
    expiredCertFile: write("expired.pem", pki.expired.cert),
    expiredKeyFile: write("expired-key.pem", pki.expired.key, 0o600),
    untrustedCertFile: write("untrusted.pem", pki.untrusted.cert),
    untrustedKeyFile: write("untrusted-key.pem", pki.untrusted.key, 0o600),
  };
}
