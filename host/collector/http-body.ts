// Request bodies of the HTTP API (`PUT /api/tasks`): bounded in bytes before they are parsed,
// so no request can exhaust the collector's memory.

import type { IncomingMessage } from "node:http";

/** A body the API does not take: answered with `status` and the message. */
export class BodyError extends Error {
  constructor(readonly status: 400 | 413, message: string) {
    super(message);
  }
}

/** The body parsed as JSON; more than `maxBytes` (declared or sent) is a 413. */
export async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const tooLarge = () => new BodyError(413, `the body is larger than ${maxBytes} bytes, the most this endpoint takes`);
  if (Number(req.headers["content-length"] ?? 0) > maxBytes) throw tooLarge();
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > maxBytes) throw tooLarge();
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks, length).toString("utf8"));
  } catch (err) {
    throw new BodyError(400, `the body is not JSON: ${(err as Error).message}`);
  }
}
