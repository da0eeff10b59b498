//! Headless Chromium (the Debian package tests/run.sh installs) driven over
//! the DevTools protocol: pages are loaded, forms filled and buttons clicked
//! as a user would, and the layout is measured in the browser itself.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use headless_chrome::{Browser, LaunchOptions, Tab};

/// A browser with one window of `width` x `height` CSS pixels.
pub fn launch(width: u32, height: u32) -> Browser {
    let options = LaunchOptions::default_builder()
        .path(Some(PathBuf::from("/usr/bin/chromium")))
        .window_size(Some((width, height)))
        // Root in CI: Chromium's sandbox refuses to start as root.
        .sandbox(false)
        .idle_browser_timeout(Duration::from_secs(120))
        .build()
        .expect("chromium launch options");
    Browser::new(options).expect("chromium is installed by tests/run.sh")
}

/// Create a web user with `role` (and `opds`) and `password`, through the
/// CLI as an admin would.
pub fn add_user(data_dir: &Path, name: &str, role: &str, opds: &[&str], password: &str) {
    let mut args = vec!["user", "add", name, "--role", role, "--password-stdin"];
    for o in opds {
        args.extend(["--opd", o]);
    }
    let mut add = Command::new(super::bin("pantau-collector"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run pantau-collector user add");
    add.stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    assert!(add.wait().unwrap().success(), "user add {name}");
}

/// Open `base`/login in a new tab, sign in, and return the tab (on the page
/// the login leads to).
pub fn sign_in(browser: &Browser, base: &str, user: &str, password: &str) -> Arc<Tab> {
    let tab = browser.new_tab().expect("new tab");
    tab.navigate_to(&format!("{base}/login"))
        .and_then(|t| t.wait_until_navigated())
        .expect("login page");
    let field = |css: &str| {
        tab.wait_for_element(css)
            .unwrap_or_else(|e| panic!("{css} on the login page: {e}"))
    };
    field("input[name=username]")
        .type_into(user)
        .expect("type user");
    field("input[name=password]")
        .type_into(password)
        .expect("type password");
    field("form button").click().expect("click log in");
    super::wait_for("the page after login", Duration::from_secs(30), || {
        let url = tab.get_url();
        (!url.contains("/login")).then_some(())
    });
    tab.wait_until_navigated().expect("after login");
    tab
}

/// Evaluate `js` in the page and return its value as JSON.
pub fn eval(tab: &Tab, js: &str) -> serde_json::Value {
    tab.evaluate(js, false)
        .unwrap_or_else(|e| panic!("evaluate {js}: {e}"))
        .value
        .unwrap_or(serde_json::Value::Null)
}
