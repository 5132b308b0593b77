defmodule Web.ServerTest do
  use ExUnit.Case, async: true

  alias Web.JSON

  ## Helpers

  # Starts a Web.Server on a free port and returns the port.
  defp start_server!(id, opts) do
    pid = start_supervised!(Supervisor.child_spec({Web.Server, [port: 0] ++ opts}, id: id))
    Web.Server.port(pid)
  end

  # A fake ai-server: our own server with a test handler. Every request it
  # receives is sent to the test process as {:ai_server, request}.
  defp start_fake_ai_server!(
         chat_reply \\ fn _request -> {200, ~s({"reply":"hi"})} end,
         id \\ :fake_ai_server
       ) do
    test = self()

    handler = fn request ->
      send(test, {:ai_server, request})

      case request do
        %{method: "GET", path: "/health"} -> {200, ~s({"status":"ok"})}
        %{method: "POST", path: "/chat"} -> chat_reply.(request)
        _ -> {404, ~s({"error":"not found"})}
      end
    end

    port = start_server!(id, handler: handler)
    "http://127.0.0.1:#{port}"
  end

  defp start_web!(opts), do: start_server!(:web, opts)

  # A port nothing listens on.
  defp closed_port_url do
    {:ok, socket} = :gen_tcp.listen(0, ip: {127, 0, 0, 1})
    {:ok, port} = :inet.port(socket)
    :ok = :gen_tcp.close(socket)
    "http://127.0.0.1:#{port}"
  end

  # Sends raw bytes and reads the whole response (the server closes the
  # connection after each response). Returns {status, headers, body}.
  defp raw(port, data) do
    {:ok, socket} = :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false])
    :ok = :gen_tcp.send(socket, data)
    response = recv_all(socket, "")
    :gen_tcp.close(socket)

    [head, body] = String.split(response, "\r\n\r\n", parts: 2)
    ["HTTP/1.1 " <> <<status::binary-size(3)>> <> _ | header_lines] = String.split(head, "\r\n")

    headers =
      Map.new(header_lines, fn line ->
        [name, value] = String.split(line, ": ", parts: 2)
        {String.downcase(name), value}
      end)

    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == Integer.to_string(byte_size(body))
    {String.to_integer(status), headers, body}
  end

  defp recv_all(socket, acc) do
    case :gen_tcp.recv(socket, 0, 5_000) do
      {:ok, data} -> recv_all(socket, acc <> data)
      {:error, :closed} -> acc
    end
  end

  defp request(port, method, path, body \\ nil) do
    body_headers =
      if body,
        do: "content-type: application/json\r\ncontent-length: #{byte_size(body)}\r\n",
        else: ""

    {status, _headers, resp_body} =
      raw(port, "#{method} #{path} HTTP/1.1\r\nhost: test\r\n#{body_headers}\r\n#{body}")

    {status, decode!(resp_body)}
  end

  defp decode!(json) do
    {:ok, term} = JSON.decode(json)
    term
  end

  defp tmp_dir! do
    dir = Path.join(System.tmp_dir!(), "web-test-#{System.unique_integer([:positive])}")
    on_exit(fn -> File.rm_rf!(dir) end)
    dir
  end

  ## Health

  test "health reports an unreachable ai-server" do
    port = start_web!(ai_server_url: closed_port_url())

    assert request(port, "GET", "/health") ==
             {200,
              %{
                "status" => "ok",
                "service" => "web",
                "release" => "",
                "ai_server" => "unreachable"
              }}
  end

  test "health names the release it runs, so a deploy's gate knows who answers" do
    port = start_web!(ai_server_url: closed_port_url(), release: "rel-7f3a")

    assert {200, %{"service" => "web", "release" => "rel-7f3a"}} = request(port, "GET", "/health")
  end

  test "health reports a reachable ai-server" do
    port = start_web!(ai_server_url: start_fake_ai_server!())

    assert {200, %{"status" => "ok", "ai_server" => "reachable"}} =
             request(port, "GET", "/health")

    assert_received {:ai_server, %{method: "GET", path: "/health"}}
  end

  test "health ignores the query string" do
    port = start_web!(ai_server_url: closed_port_url())
    assert {200, %{"status" => "ok"}} = request(port, "GET", "/health?verbose=1")
  end

  ## Chat

  test "chat forwards the body unchanged and returns the ai-server's answer" do
    url =
      start_fake_ai_server!(fn request ->
        {201, JSON.encode!(%{"echo" => decode!(request.body), "ok" => true})}
      end)

    port = start_web!(ai_server_url: url)
    body = ~s({"messages":[{"role":"user","content":"héllo \\"there\\""}],"n":1})

    assert request(port, "POST", "/chat", body) ==
             {201, %{"echo" => decode!(body), "ok" => true}}

    assert_received {:ai_server, %{method: "POST", path: "/chat", body: ^body} = forwarded}
    assert {"content-type", "application/json"} in forwarded.headers
  end

  test "chat passes through ai-server error statuses" do
    url = start_fake_ai_server!(fn _ -> {422, ~s({"error":"bad messages"})} end)
    port = start_web!(ai_server_url: url)

    assert request(port, "POST", "/chat", "{}") == {422, %{"error" => "bad messages"}}
  end

  test "chat answers 502 when the ai-server is down" do
    port = start_web!(ai_server_url: closed_port_url())

    assert {502, %{"error" => "ai-server unreachable", "detail" => "econnrefused"}} =
             request(port, "POST", "/chat", ~s({"message":"hi"}))
  end

  test "chat answers 504 when the ai-server is too slow" do
    url =
      start_fake_ai_server!(fn _ ->
        Process.sleep(1_000)
        {200, "{}"}
      end)

    port = start_web!(ai_server_url: url, chat_timeout: 100)
    assert request(port, "POST", "/chat", "{}") == {504, %{"error" => "ai-server timed out"}}
  end

  test "chat answers 502 when the ai-server does not answer JSON" do
    url = start_fake_ai_server!(fn _ -> {200, "<html>oops</html>"} end)
    port = start_web!(ai_server_url: url)

    assert {502, %{"error" => "invalid response from ai-server", "ai_server_status" => 200}} =
             request(port, "POST", "/chat", "{}")
  end

  test "chat rejects malformed JSON and non-objects with 400" do
    port = start_web!(ai_server_url: start_fake_ai_server!())

    assert {400, %{"error" => "invalid JSON body"}} = request(port, "POST", "/chat", "{nope")
    assert {400, %{"error" => "invalid JSON body"}} = request(port, "POST", "/chat")

    assert {400, %{"error" => "request body must be a JSON object"}} =
             request(port, "POST", "/chat", "[1,2]")

    refute_received {:ai_server, _}
  end

  test "successful chats are appended to DATA_DIR/chats.jsonl" do
    url = start_fake_ai_server!(fn req -> {200, JSON.encode!(%{"got" => decode!(req.body)})} end)
    # A subdirectory that does not exist yet: it must be created.
    data_dir = Path.join(tmp_dir!(), "volume")
    port = start_web!(ai_server_url: url, data_dir: data_dir)

    assert {200, _} = request(port, "POST", "/chat", ~s({"message":"one ✓"}))
    assert {200, _} = request(port, "POST", "/chat", ~s({"message":"two\\nlines"}))

    lines = data_dir |> Path.join("chats.jsonl") |> File.read!() |> String.split("\n")
    assert [first, second, ""] = lines

    assert %{"at" => at, "request" => request, "response" => response} = decode!(first)
    assert {:ok, _datetime, 0} = DateTime.from_iso8601(at)
    assert String.ends_with?(at, "Z")
    assert request == %{"message" => "one ✓"}
    assert response == %{"got" => %{"message" => "one ✓"}}

    assert %{"request" => %{"message" => "two\nlines"}} = decode!(second)
  end

  test "failed chats are not appended, and a broken DATA_DIR is not fatal" do
    data_dir = tmp_dir!()
    url = start_fake_ai_server!(fn _ -> {500, ~s({"error":"boom"})} end)
    port = start_web!(ai_server_url: url, data_dir: data_dir)
    assert {500, _} = request(port, "POST", "/chat", "{}")
    refute File.exists?(Path.join(data_dir, "chats.jsonl"))

    # DATA_DIR is a regular file: the write fails, the chat still succeeds.
    not_a_dir = Path.join(tmp_dir!(), "file")
    File.mkdir_p!(Path.dirname(not_a_dir))
    File.write!(not_a_dir, "")
    url = start_fake_ai_server!(fn _ -> {200, ~s({"reply":"hi"})} end, :fake_ai_server_2)
    stop_supervised!(:web)
    port = start_web!(ai_server_url: url, data_dir: not_a_dir)

    assert {200, %{"reply" => "hi"}} = request(port, "POST", "/chat", "{}")
  end

  ## Routing and protocol errors

  test "unknown paths are 404, wrong methods 405" do
    port = start_web!(ai_server_url: closed_port_url())

    assert {404, %{"error" => "not found"}} = request(port, "GET", "/nope")
    assert {404, %{"error" => "not found"}} = request(port, "POST", "/")
    assert {405, %{"allowed" => ["GET"]}} = request(port, "POST", "/health", "{}")
    assert {405, %{"allowed" => ["POST"]}} = request(port, "GET", "/chat")
    assert {405, _} = request(port, "DELETE", "/chat")
  end

  test "garbage does not kill the listener" do
    port = start_web!(ai_server_url: closed_port_url())

    for garbage <- [
          "GARBAGE\r\n\r\n",
          <<0, 1, 2, 255, 254, "\r\n\r\n">>,
          "GET /health HTTP/1.1\r\nno colon here\r\n\r\n",
          "GET\r\n\r\n",
          "HTTP/1.1 200 OK\r\n\r\n"
        ] do
      assert {400, _headers, body} = raw(port, garbage)
      assert %{"error" => _} = decode!(body)
    end

    long_line = "GET /health HTTP/1.1\r\nx-long: " <> String.duplicate("x", 100_000) <> "\r\n\r\n"
    assert {431, _, _} = raw(port, long_line)
    many_headers = "GET /health HTTP/1.1\r\n" <> String.duplicate("x-a: b\r\n", 101) <> "\r\n"
    assert {431, _, _} = raw(port, many_headers)

    # A client that connects and leaves without sending anything.
    {:ok, socket} = :gen_tcp.connect(~c"127.0.0.1", port, [])
    :gen_tcp.close(socket)

    assert {200, %{"status" => "ok"}} = request(port, "GET", "/health")
  end

  test "bad Content-Length is 400, chunked bodies 411, bodies over 1 MiB 413" do
    port = start_web!(ai_server_url: closed_port_url())

    assert {400, _, _} = raw(port, "POST /chat HTTP/1.1\r\ncontent-length: abc\r\n\r\n")
    assert {400, _, _} = raw(port, "POST /chat HTTP/1.1\r\ncontent-length: -1\r\n\r\n")

    assert {400, _, _} =
             raw(port, "POST /chat HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n")

    assert {411, _, _} =
             raw(port, "POST /chat HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n")

    assert {413, _, body} = raw(port, "POST /chat HTTP/1.1\r\ncontent-length: 1048577\r\n\r\n")
    assert %{"error" => "request body too large (max 1 MiB)"} = decode!(body)

    assert {200, %{"status" => "ok"}} = request(port, "GET", "/health")
  end

  test "a body of exactly 1 MiB is accepted, including with Expect: 100-continue" do
    url =
      start_fake_ai_server!(fn req -> {200, JSON.encode!(%{"size" => byte_size(req.body)})} end)

    port = start_web!(ai_server_url: url)
    body = ~s({"pad":") <> String.duplicate("a", 1_048_576 - 10) <> ~s("})
    assert byte_size(body) == 1_048_576

    {:ok, socket} = :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false])

    :ok =
      :gen_tcp.send(
        socket,
        "POST /chat HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: #{byte_size(body)}\r\n\r\n"
      )

    assert {:ok, "HTTP/1.1 100 Continue\r\n\r\n"} = :gen_tcp.recv(socket, 0, 5_000)
    :ok = :gen_tcp.send(socket, body)
    response = recv_all(socket, "")
    assert response =~ "HTTP/1.1 200 OK\r\n"
    assert response =~ ~s({"size":1048576})
  end

  test "a crashing handler gets a 500 and the server keeps serving" do
    port = start_web!(handler: fn _request -> raise "boom" end)

    assert {500, %{"error" => "internal server error"}} = request(port, "GET", "/")
    assert {500, _} = request(port, "GET", "/")
  end
end
