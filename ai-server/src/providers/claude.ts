import type { ClaudeConfig } from "../config.ts";
import { ProviderError, type ChatReply, type Provider } from "./types.ts";

export const ANTHROPIC_VERSION = "2023-06-01";
/** Beta flag the Messages API requires for OAuth (Bearer) access tokens. */
export const ANTHROPIC_OAUTH_BETA = "oauth-2025-04-20";
export const CLAUDE_MAX_TOKENS = 1024;

const UPSTREAM_ERROR = "claude upstream error";

interface ContentBlock {
  type?: unknown;
  text?: unknown;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Concatenated `text` of the response's `content` blocks of type `text`. */
export function extractText(body: unknown): string | undefined {
  if (!isRecord(body) || !Array.isArray(body.content)) return undefined;
  let text = "";
  for (const block of body.content as unknown[]) {
    if (!isRecord(block)) continue;
    const { type, text: blockText } = block as ContentBlock;
    if (type === "text" && typeof blockText === "string") text += blockText;
  }
  return text;
}

/**
 * Anthropic Messages API provider. Errors are mapped to ProviderError with a
 * fixed body: the upstream response body is never forwarded (it could echo
 * request headers, i.e. the token).
 */
export function createClaudeProvider(config: ClaudeConfig): Provider {
  return {
    name: "claude",
    async chat(message: string): Promise<ChatReply> {
      const token = config.accessToken;
      if (token === undefined) {
        throw new ProviderError(
          503,
          { error: "claude provider is not configured: set CLAUDE_ACCESS_TOKEN" },
          "CLAUDE_ACCESS_TOKEN is not set",
        );
      }

      let response: Response;
      try {
        response = await fetch(`${config.baseUrl}/v1/messages`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${token}`,
            "anthropic-version": ANTHROPIC_VERSION,
            "anthropic-beta": ANTHROPIC_OAUTH_BETA,
            "content-type": "application/json",
          },
          body: JSON.stringify({
            model: config.model,
            max_tokens: CLAUDE_MAX_TOKENS,
            messages: [{ role: "user", content: message }],
          }),
          signal: AbortSignal.timeout(config.timeoutMs),
        });
      } catch (err) {
        const timedOut = err instanceof Error && err.name === "TimeoutError";
        // status 0: no HTTP response was received (network error or timeout).
        throw new ProviderError(
          502,
          { error: UPSTREAM_ERROR, status: 0, reason: timedOut ? "timeout" : "network error" },
          timedOut ? "claude upstream timed out" : "claude upstream network error",
        );
      }

      if (!response.ok) {
        await response.body?.cancel().catch(() => undefined);
        throw new ProviderError(
          502,
          { error: UPSTREAM_ERROR, status: response.status },
          `claude upstream returned ${response.status}`,
        );
      }

      let parsed: unknown;
      try {
        parsed = await response.json();
      } catch {
        parsed = undefined;
      }
      const reply = extractText(parsed);
      if (reply === undefined) {
        throw new ProviderError(
          502,
          { error: UPSTREAM_ERROR, status: response.status, reason: "unexpected response shape" },
          "claude upstream returned an unexpected response shape",
        );
      }
      const model =
        isRecord(parsed) && typeof parsed.model === "string" ? parsed.model : config.model;
      return { provider: "claude", reply, model };
    },
  };
}
