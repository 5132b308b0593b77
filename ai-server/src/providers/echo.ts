import type { ChatReply, Provider } from "./types.ts";

/** Offline, deterministic provider: replies with the message it was given. */
export function createEchoProvider(): Provider {
  return {
    name: "echo",
    chat(message: string): Promise<ChatReply> {
      return Promise.resolve({ provider: "echo", reply: `echo: ${message}` });
    },
  };
}
