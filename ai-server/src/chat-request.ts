/**
 * The shape of a POST /chat body, checked with valibot (the ai-server's npm
 * dependency, pinned by bun.lock and built into the Nix closure).
 */
import * as v from "valibot";

export const NOT_AN_OBJECT = "request body must be a JSON object";
export const BAD_MESSAGE = '"message" is required and must be a non-empty string';

/** `{"message": "<text, not only whitespace>"}`; other keys are ignored. */
export const ChatRequest = v.pipe(
  // valibot's object() also accepts arrays, which are no chat request.
  v.custom<Record<string, unknown>>(
    (body) => typeof body === "object" && body !== null && !Array.isArray(body),
    NOT_AN_OBJECT,
  ),
  v.object({
    message: v.pipe(
      v.optional(v.string(BAD_MESSAGE), ""),
      v.check((text) => text.trim() !== "", BAD_MESSAGE),
    ),
  }),
);

export type ChatRequest = v.InferOutput<typeof ChatRequest>;

/** The request, or the message of the first problem found. */
export function parseChatRequest(
  body: unknown,
): { ok: true; request: ChatRequest } | { ok: false; error: string } {
  const result = v.safeParse(ChatRequest, body);
  return result.success
    ? { ok: true, request: result.output }
    : { ok: false, error: result.issues[0].message };
}
