defmodule Web.ChatLog do
  @moduledoc """
  Appends successful chats to `<data_dir>/chats.jsonl`, one JSON object per line:
  `{"at": ISO8601 UTC, "request": ..., "response": ...}`.

  A failed write is logged and otherwise ignored: the chat itself succeeded.
  """
  require Logger

  @file_name "chats.jsonl"

  @spec path(Path.t()) :: Path.t()
  def path(data_dir), do: Path.join(data_dir, @file_name)

  @spec append(Path.t(), term, term) :: :ok | :error
  def append(data_dir, request, response) do
    at = DateTime.utc_now() |> DateTime.truncate(:millisecond) |> DateTime.to_iso8601()
    line = [Web.JSON.encode!(%{at: at, request: request, response: response}), ?\n]
    path = path(data_dir)

    # One write of the whole line to a file opened in append mode (O_APPEND),
    # so lines from concurrent requests do not interleave.
    with :ok <- File.mkdir_p(data_dir),
         :ok <- File.write(path, line, [:append]) do
      :ok
    else
      {:error, reason} ->
        Logger.error("could not append chat to #{path}: #{:file.format_error(reason)}")
        :error
    end
  end
end
