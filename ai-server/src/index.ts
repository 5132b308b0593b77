/**
 * Entry point: reads the environment, starts the server, handles signals.
 * Writes nothing to disk, so it can run from a read-only directory.
 */
import type { Server } from "bun";
import { startServer } from "./app.ts";
import { ConfigError, loadConfig, type Config } from "./config.ts";

let config: Config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`ai-server: ${err.message}`);
    process.exit(2);
  }
  throw err;
}

let server: Server<undefined> | undefined;

function shutdown(signal: NodeJS.Signals): void {
  console.log(`ai-server received ${signal}, shutting down`);
  // Close the listener and open connections; exit without waiting on them.
  void server?.stop(true);
  process.exit(0);
}

// Installed before listening, so an early signal still exits cleanly (0).
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

if (config.provider === "claude" && config.claude.accessToken === undefined) {
  console.warn(
    "warning: AI_PROVIDER=claude but CLAUDE_ACCESS_TOKEN is not set; /chat will answer 503",
  );
}

server = startServer(config);
console.log(`ai-server listening on port ${server.port}`);
