import type { ProviderName } from "../config.ts";

export interface ChatReply {
  provider: ProviderName;
  reply: string;
  model?: string;
}

export interface Provider {
  readonly name: ProviderName;
  chat(message: string): Promise<ChatReply>;
}

/**
 * An expected failure with a ready-made HTTP status and JSON body. The body
 * must never contain credentials or raw upstream content.
 */
export class ProviderError extends Error {
  override readonly name = "ProviderError";
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    /** Safe, short detail for the server log. */
    readonly logDetail: string,
  ) {
    super(logDetail);
  }
}
