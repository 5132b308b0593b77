import type { Config } from "../config.ts";
import { createClaudeProvider } from "./claude.ts";
import { createEchoProvider } from "./echo.ts";
import type { Provider } from "./types.ts";

export { ProviderError, type ChatReply, type Provider } from "./types.ts";

export function createProvider(config: Config): Provider {
  switch (config.provider) {
    case "echo":
      return createEchoProvider();
    case "claude":
      return createClaudeProvider(config.claude);
  }
}
