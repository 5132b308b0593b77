defmodule Web.HTTP do
  @moduledoc """
  One HTTP/1.1 exchange on an accepted socket: parse the request, call the
  handler, write a JSON response, close the connection.

  Only `Content-Length` bodies are supported (up to 1 MiB). Every response is
  `application/json` with `connection: close`. Protocol errors are answered
  with a JSON error (400, 408, 411, 413, 431) instead of crashing.
  """
  require Logger

  @max_body 1_048_576
  @max_headers 100
  # Request line plus headers.
  @max_head 65_536
  @recv_timeout 15_000
  # After responding, how long we keep reading (and discarding) what the
  # client still sends, so that closing with unread data does not RST the
  # connection before the client has read our response.
  @linger_ms 1_000

  @type request :: %{
          method: String.t(),
          path: String.t(),
          query: String.t() | nil,
          headers: [{String.t(), String.t()}],
          body: binary
        }

  @doc false
  def serve(socket, handler) do
    started = System.monotonic_time()

    case read_request(socket) do
      {:ok, request} ->
        {status, body} = call_handler(handler, request)
        send_response(socket, status, body)
        log(request.method, request.path, status, started)

      {:error, status, message, method, path} ->
        send_response(socket, status, Web.JSON.encode!(%{error: message}))
        log(method, path, status, started)

      :closed ->
        # Client went away (e.g. a TCP health check): nothing to answer.
        :ok
    end

    close(socket)
  end

  ## Request parsing
  #
  # The socket is in raw mode; the request line and headers are parsed from a
  # buffer with :erlang.decode_packet/3 (the kernel's HTTP parser). Doing it
  # ourselves rather than with the socket's `packet: :http_bin` mode lets us
  # answer an over-long line with 431 instead of the socket being closed.

  defp read_request(socket) do
    case next_packet(socket, :http_bin, "", 0) do
      {:ok, {:http_request, method, target, _version}, buffer, received} ->
        # `method` is an atom for the common methods, a binary otherwise.
        method = to_string(method)

        case target_path(target) do
          {:ok, path, query} -> read_rest(socket, method, path, query, buffer, received)
          :error -> {:error, 400, "invalid request target", method, "-"}
        end

      {:ok, _not_a_request_line, _buffer, _received} ->
        {:error, 400, "malformed request line", "-", "-"}

      {:error, 400, _message} ->
        {:error, 400, "malformed request line", "-", "-"}

      {:error, status, message} ->
        {:error, status, message, "-", "-"}

      :closed ->
        :closed
    end
  end

  defp read_rest(socket, method, path, query, buffer, received) do
    with {:ok, headers, buffer} <- read_headers(socket, buffer, received, []),
         {:ok, body} <- read_body(socket, headers, buffer) do
      {:ok, %{method: method, path: path, query: query, headers: headers, body: body}}
    else
      :closed -> :closed
      {:error, status, message} -> {:error, status, message, method, path}
    end
  end

  # Returns the next request line or header from `buffer`, reading more from
  # the socket as needed. `received` counts the bytes read so far, to bound
  # the size of the request head.
  defp next_packet(socket, type, buffer, received) do
    case :erlang.decode_packet(type, buffer, []) do
      {:ok, {:http_error, _line}, _rest} ->
        {:error, 400, "malformed request"}

      {:ok, packet, rest} ->
        {:ok, packet, rest, received}

      {:more, _length} when received > @max_head ->
        {:error, 431, "request head too large"}

      {:more, _length} ->
        case :gen_tcp.recv(socket, 0, @recv_timeout) do
          {:ok, data} -> next_packet(socket, type, buffer <> data, received + byte_size(data))
          {:error, :timeout} -> {:error, 408, "request timeout"}
          {:error, _closed} -> :closed
        end

      {:error, _reason} ->
        {:error, 400, "malformed request"}
    end
  end

  defp target_path({:abs_path, target}), do: split_query(target)
  defp target_path({:absoluteURI, _scheme, _host, _port, target}), do: split_query(target)
  defp target_path(_), do: :error

  defp split_query(target) do
    case String.split(target, "?", parts: 2) do
      [path] -> {:ok, path, nil}
      [path, query] -> {:ok, path, query}
    end
  end

  defp read_headers(_socket, _buffer, _received, acc) when length(acc) >= @max_headers,
    do: {:error, 431, "too many request headers"}

  defp read_headers(socket, buffer, received, acc) do
    case next_packet(socket, :httph_bin, buffer, received) do
      {:ok, {:http_header, _, name, _, value}, buffer, received} ->
        # `name` is an atom for well-known headers, a binary otherwise.
        name = name |> to_string() |> String.downcase()
        read_headers(socket, buffer, received, [{name, value} | acc])

      {:ok, :http_eoh, buffer, _received} ->
        {:ok, Enum.reverse(acc), buffer}

      {:error, 400, _message} ->
        {:error, 400, "malformed request header"}

      other ->
        other
    end
  end

  # `buffer` holds what was already read past the end of the headers.
  defp read_body(socket, headers, buffer) do
    if List.keymember?(headers, "transfer-encoding", 0) do
      {:error, 411, "Transfer-Encoding is not supported, send a Content-Length body"}
    else
      case content_length(headers) do
        {:ok, length} when length > @max_body ->
          {:error, 413, "request body too large (max 1 MiB)"}

        {:ok, length} when byte_size(buffer) >= length ->
          # Anything after the body (pipelined requests) is ignored: we close.
          {:ok, binary_part(buffer, 0, length)}

        {:ok, length} ->
          recv_body(socket, headers, buffer, length - byte_size(buffer))

        :error ->
          {:error, 400, "invalid Content-Length"}
      end
    end
  end

  defp content_length(headers) do
    values = for {"content-length", value} <- headers, do: String.trim(value)

    case Enum.uniq(values) do
      [] -> {:ok, 0}
      [value] -> if digits?(value), do: {:ok, String.to_integer(value)}, else: :error
      _conflicting -> :error
    end
  end

  defp digits?(value) do
    byte_size(value) in 1..15 and
      Enum.all?(:binary.bin_to_list(value), &(&1 in ?0..?9))
  end

  defp recv_body(socket, headers, buffer, missing) do
    # curl and others send "Expect: 100-continue" for larger bodies and wait
    # (curl: 1 s) for this interim response before sending the body.
    if expects_continue?(headers) do
      :gen_tcp.send(socket, "HTTP/1.1 100 Continue\r\n\r\n")
    end

    case :gen_tcp.recv(socket, missing, @recv_timeout) do
      {:ok, rest} -> {:ok, buffer <> rest}
      {:error, :timeout} -> {:error, 408, "request timeout"}
      {:error, _closed} -> :closed
    end
  end

  defp expects_continue?(headers) do
    Enum.any?(headers, fn {name, value} ->
      name == "expect" and String.downcase(String.trim(value)) == "100-continue"
    end)
  end

  ## Handler and response

  defp call_handler(handler, request) do
    handler.(request)
  catch
    kind, reason ->
      # Log the error's type and where it happened, but neither the error
      # message nor function arguments: they could contain request data.
      error =
        if kind == :error,
          do: inspect(Exception.normalize(kind, reason, __STACKTRACE__).__struct__),
          else: inspect(kind)

      stacktrace = Enum.map(__STACKTRACE__, &drop_args/1)

      Logger.error(
        "handler crashed (#{error}) for #{request.method} #{request.path}\n" <>
          Exception.format_stacktrace(stacktrace)
      )

      {500, Web.JSON.encode!(%{error: "internal server error"})}
  end

  defp drop_args({mod, fun, args, location}) when is_list(args),
    do: {mod, fun, length(args), location}

  defp drop_args(entry), do: entry

  defp send_response(socket, status, body) do
    head = [
      "HTTP/1.1 ",
      Integer.to_string(status),
      " ",
      reason_phrase(status),
      "\r\ncontent-type: application/json\r\ncontent-length: ",
      Integer.to_string(IO.iodata_length(body)),
      "\r\nconnection: close\r\n\r\n"
    ]

    # The client may already be gone; nothing useful to do about it.
    _ = :gen_tcp.send(socket, [head, body])
    :ok
  end

  defp close(socket) do
    _ = :gen_tcp.shutdown(socket, :write)
    linger(socket, System.monotonic_time(:millisecond) + @linger_ms)
    :gen_tcp.close(socket)
  end

  defp linger(socket, deadline) do
    remaining = deadline - System.monotonic_time(:millisecond)

    with true <- remaining > 0,
         {:ok, _discarded} <- :gen_tcp.recv(socket, 0, remaining) do
      linger(socket, deadline)
    end
  end

  defp log(method, path, status, started) do
    ms = System.convert_time_unit(System.monotonic_time() - started, :native, :millisecond)
    # Method, path and status only: never the query string or body.
    Logger.info("#{method} #{path} #{status} #{ms}ms")
  end

  @reasons %{
    100 => "Continue",
    200 => "OK",
    201 => "Created",
    202 => "Accepted",
    204 => "No Content",
    400 => "Bad Request",
    401 => "Unauthorized",
    403 => "Forbidden",
    404 => "Not Found",
    405 => "Method Not Allowed",
    408 => "Request Timeout",
    409 => "Conflict",
    411 => "Length Required",
    413 => "Content Too Large",
    415 => "Unsupported Media Type",
    422 => "Unprocessable Content",
    429 => "Too Many Requests",
    431 => "Request Header Fields Too Large",
    500 => "Internal Server Error",
    501 => "Not Implemented",
    502 => "Bad Gateway",
    503 => "Service Unavailable",
    504 => "Gateway Timeout"
  }

  # The ai-server's status is passed through, so it may be one not listed.
  defp reason_phrase(status), do: Map.get(@reasons, status, "Status #{status}")
end
