// The 600–609 error table, defined once. `definition` is the user-visible name (from the seed
// table), `description` the seed's explanation, `reportedWhen` the precise rule catprobe
// implements (../shared/DESIGN.md).

export type ErrorCode = 600 | 601 | 602 | 603 | 604 | 605 | 606 | 607 | 608 | 609;

export interface ErrorCodeInfo {
  code: ErrorCode;
  name: string;
  definition: string;
  description: string;
  reportedWhen: string;
}

export const ERROR_CODES: readonly ErrorCodeInfo[] = [
  {
    code: 600, name: "DNS_FAILED",
    definition: "DNS resolution failed.",
    description: "This error code will be reported if the network is abnormal or the DNS server or domain is incorrect.",
    reportedWhen: "the target name cannot be resolved: NXDOMAIN, SERVFAIL, no address of the wanted family, resolver unreachable, or the DNS timeout passed",
  },
  {
    code: 601, name: "CONNECT_FAILED",
    definition: "Server connection failed.",
    description: "Currently, only TCP-based protocols are supported for protocol monitoring. This error code will be reported if server connection times out after socket creation. The timeout period can be configured in the task.",
    reportedWhen: "the TCP connection is not established: refused, unreachable, reset during connect, or the connect timeout passed after the socket was created",
  },
  {
    code: 602, name: "SEND_FAILED",
    definition: "Failed to send the network data.",
    description: "The network is disconnected.",
    reportedWhen: "the connection is reset or closed before or while a step's data is written, so the data cannot be handed in full to the local TCP stack",
  },
  {
    code: 603, name: "NO_RESPONSE",
    definition: "No response was received after connection to the server.",
    description: "This error code will be reported by the client if no data is received or data receiving times out after request sending.",
    reportedWhen: "after a step's data was written, no byte of its reply arrives within the response timeout, or the peer closes or resets the connection before the first byte",
  },
  {
    code: 604, name: "TASK_TIMEOUT",
    definition: "Task execution timed out.",
    description: "The protocol test allows for sending protocol packets multiple times to the remote server. This error code will be reported if the time taken to send the protocol packet once exceeds the configured time limit. The time limit can be configured flexibly on the platform.",
    reportedWhen: "one run of the task (DNS through the last step) takes longer than the task time limit",
  },
  {
    code: 605, name: "INVALID_SEND_DATA",
    definition: "The data to be sent configured in the task is invalid.",
    description: "Currently, the protocol test supports sending text or buffer. In text mode, data is sent without conversion. In buffer mode, the client needs to convert text into a hex buffer. This error code will be reported if an error occurs during the conversion.",
    reportedWhen: "buffer mode: the send data is not valid hex (odd digit count, a non-hex character, empty)",
  },
  {
    code: 606, name: "INVALID_VERIFY_DATA",
    definition: "The data to be verified configured in the task is invalid.",
    description: "The protocol test will verify the content returned by the server in four ways: no verification, full match, partial match, and MD5 (recommended if the returned content is large in size). If the buffer mode is set, the content needs to be converted to a hex buffer for verification. This error code will be reported if an error occurs during the conversion.",
    reportedWhen: "buffer mode: the verify data is not valid hex; md5 mode: the digest is not 32 hex digits; partial mode: the keyword is empty or longer than the core supports",
  },
  {
    code: 607, name: "VERIFY_FAILED",
    definition: "Failed to verify the keyword.",
    description: "This error code will be reported if no verified keyword is contained in the data returned by the server.",
    reportedWhen: "the reply does not pass verification: a full reply differs from the expected bytes, has more, or ends short; a prefix differs or ends short; the keyword is not found before the reply ends; the MD5 of the reply differs",
  },
  {
    code: 608, name: "TLS_FAILED",
    definition: "SSL handshake failed.",
    description: "The port is incorrect or the network is disconnected.",
    reportedWhen: "the TLS handshake fails: alert, certificate rejected, the peer is not speaking TLS, closed or timed out during the handshake",
  },
  {
    code: 609, name: "STEP_TIMEOUT",
    definition: "The step timed out.",
    description: "If one of the steps in a protocol task times out, no further steps will be performed and this error code will be reported.",
    reportedWhen: "one step (its send and its verified reply) takes longer than the step time limit; the remaining steps are not run",
  },
];

const byCode = new Map<number, ErrorCodeInfo>(ERROR_CODES.map((info) => [info.code, info]));

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "number" && byCode.has(value);
}

export function errorCodeInfo(code: ErrorCode): ErrorCodeInfo {
  return byCode.get(code)!;
}
