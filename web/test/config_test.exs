defmodule Web.ConfigTest do
  use ExUnit.Case, async: true

  test "defaults" do
    assert Web.Config.from_env(%{}) ==
             [port: 4000, ai_server_url: "http://localhost:3000", data_dir: nil]
  end

  test "reads PORT, AI_SERVER_URL and DATA_DIR" do
    env = %{"PORT" => "8080", "AI_SERVER_URL" => "http://ai:3000/", "DATA_DIR" => "/data"}

    assert Web.Config.from_env(env) ==
             [port: 8080, ai_server_url: "http://ai:3000", data_dir: "/data"]
  end

  test "blank values fall back to defaults" do
    assert Web.Config.from_env(%{"PORT" => "", "DATA_DIR" => " "})[:data_dir] == nil
  end

  test "rejects an invalid PORT" do
    assert_raise ArgumentError, fn -> Web.Config.from_env(%{"PORT" => "http"}) end
    assert_raise ArgumentError, fn -> Web.Config.from_env(%{"PORT" => "70000"}) end
  end
end
