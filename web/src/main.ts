// Entry point: the sign-in screen, then the app shell once a session is open.
import type { Backend } from "./backend.ts";
import { h, replace, toast } from "./dom.ts";
import { register, resume, signIn } from "./sdk.ts";
import { startApp } from "./app.ts";

const root = document.getElementById("app")!;

function signInScreen(): void {
  let mode: "login" | "register" = "login";
  const error = h("p", { class: "error", role: "alert", id: "auth-error" });
  const username = h("input", {
    id: "auth-username", name: "username", autocomplete: "username", required: true,
    minlength: 1, maxlength: 64, autocapitalize: "none", spellcheck: "false",
  });
  const password = h("input", {
    id: "auth-password", name: "password", type: "password", required: true,
    autocomplete: "current-password", minlength: 8,
  });
  const submit = h("button", { type: "submit", class: "primary", id: "auth-submit" }, "Log in");
  const switcher = h("button", { type: "button", class: "link", id: "auth-switch" }, "Create an account");
  const heading = h("h1", null, "Log in to Sandcat");
  switcher.addEventListener("click", () => {
    mode = mode === "login" ? "register" : "login";
    heading.textContent = mode === "login" ? "Log in to Sandcat" : "Create a Sandcat account";
    submit.textContent = mode === "login" ? "Log in" : "Create account";
    switcher.textContent = mode === "login" ? "Create an account" : "I have an account";
    password.autocomplete = mode === "login" ? "current-password" : "new-password";
    error.textContent = "";
  });
  const form = h(
    "form",
    { class: "auth", "aria-labelledby": "auth-heading" },
    h("img", { src: "/static/icon.svg", alt: "", width: 56, height: 56 }),
    heading,
    h("label", { for: "auth-username" }, "Username"),
    username,
    h("label", { for: "auth-password" }, "Password"),
    password,
    error,
    submit,
    switcher,
  );
  heading.id = "auth-heading";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      if (mode === "register") await register(username.value.trim(), password.value);
      open(await signIn(username.value.trim(), password.value));
    } catch (err) {
      error.textContent = err instanceof Error ? err.message : String(err);
      submit.disabled = false;
    }
  });
  replace(root, h("main", { class: "auth-page" }, form));
  username.focus();
}

function open(backend: Backend): void {
  startApp(root, backend, () => signInScreen());
}

async function boot(): Promise<void> {
  performance.mark("sandcat-boot");
  try {
    const backend = await resume();
    if (backend) return open(backend);
  } catch (err) {
    toast(err instanceof Error ? err.message : String(err));
  }
  signInScreen();
}

void boot();
