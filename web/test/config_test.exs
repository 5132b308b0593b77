defmodule Web.ConfigTest do
  use ExUnit.Case, async: true

  test "defaults" do
    assert Web.Config.from_env(%{}) ==
             [port: 4000, ai_server_url: "http://localhost:3000", data_dir: nil, release: ""]
  end

  test "reads PORT, AI_SERVER_URL and DATA_DIR" do
    env = %{"PORT" => "8080", "AI_SERVER_URL" => "http://ai:3000/", "DATA_DIR" => "/data"}

    assert Web.Config.from_env(env) ==
             [port: 8080, ai_server_url: "http://ai:3000", data_dir: "/data", release: ""]
  end

  test "the release is NIXFLY_RELEASE, else FLY_IMAGE_REF" do
    image = "registry.fly.io/oneshot:nix-abc"
    assert Web.Config.from_env(%{"FLY_IMAGE_REF" => image})[:release] == image

    assert Web.Config.from_env(%{"FLY_IMAGE_REF" => image, "NIXFLY_RELEASE" => "rel-1"})[:release] ==
             "rel-1"
  end

  test "blank values fall back to defaults" do
    assert Web.Config.from_env(%{"PORT" => "", "DATA_DIR" => " "})[:data_dir] == nil
  end

  test "rejects an invalid PORT" do
    assert_raise ArgumentError, fn -> Web.Config.from_env(%{"PORT" => "http"}) end
    assert_raise ArgumentError, fn -> Web.Config.from_env(%{"PORT" => "70000"}) end
  end
end
