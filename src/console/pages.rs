//! The HTML the server renders: the login page, and the shell of every page (header, navigation, the signed-in
//! account, the language switch, logout) with the chosen language's common strings. Each page's own content is
//! drawn by its script (`web/pages/<page>.js`) from the JSON API.

use std::sync::LazyLock;

use crate::store::console::{AccountRole, Session};

/// The common strings, both languages (`web/i18n.json`); each page script adds its own.
static STRINGS: LazyLock<serde_json::Value> =
    LazyLock::new(|| serde_json::from_str(include_str!("web/i18n.json")).expect("web/i18n.json is JSON"));

/// The language of a request: the `sg_lang` cookie, Simplified Chinese by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn of(headers: &http::HeaderMap) -> Lang {
        match super::auth::cookie(headers, super::auth::LANG_COOKIE).as_deref() {
            Some("en") => Lang::En,
            _ => Lang::Zh,
        }
    }

    fn key(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    fn html_lang(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
}

/// A common string in `lang` (the key itself when missing, which a test catches).
pub fn t(lang: Lang, key: &str) -> String {
    STRINGS[lang.key()][key].as_str().map_or_else(|| key.to_string(), String::from)
}

/// The pages, in navigation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Today,
    Rules,
    Cards,
    Fund,
    Clearing,
    Reports,
    Audit,
}

impl Page {
    pub const ALL: [Page; 7] =
        [Page::Today, Page::Rules, Page::Cards, Page::Fund, Page::Clearing, Page::Reports, Page::Audit];

    pub fn name(self) -> &'static str {
        match self {
            Page::Today => "today",
            Page::Rules => "rules",
            Page::Cards => "cards",
            Page::Fund => "fund",
            Page::Clearing => "clearing",
            Page::Reports => "reports",
            Page::Audit => "audit",
        }
    }

    pub fn from_path(path: &str) -> Option<Page> {
        let name = path.strip_prefix('/')?;
        Page::ALL.into_iter().find(|p| p.name() == name)
    }

    /// A street account sees the pages of what a street certificate may call: its cards and its report.
    pub fn allowed(self, role: &AccountRole) -> bool {
        *role == AccountRole::Admin || matches!(self, Page::Cards | Page::Reports)
    }
}

/// Text for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON for a `<script type="application/json">` block: `<` escaped so no string can close the element.
fn script_json(v: &serde_json::Value) -> String {
    serde_json::to_string(v).unwrap_or_default().replace('<', "\\u003c")
}

/// Why the login page is shown again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    BadCredentials,
    Locked {
        minutes_left: u64,
    },
    CsrfRefused,
    Expired,
    /// Redis could not be reached: nothing was checked or counted.
    Unavailable,
    /// Too many login attempts from this address: nothing was checked or counted.
    RateLimited,
}

impl LoginError {
    fn code(self) -> &'static str {
        match self {
            LoginError::BadCredentials => "bad_credentials",
            LoginError::Locked { .. } => "locked",
            LoginError::CsrfRefused => "csrf_refused",
            LoginError::Expired => "expired",
            LoginError::Unavailable => "unavailable",
            LoginError::RateLimited => "rate_limited",
        }
    }
}

fn head(lang: Lang, title: &str, extra: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} · settlegate</title>\n<link rel=\"stylesheet\" href=\"/assets/uPlot.min.css\">\n\
         <link rel=\"stylesheet\" href=\"/assets/console.css\">\n{extra}</head>\n",
        lang.html_lang(),
        escape(title)
    )
}

/// The login form; its hidden `csrf` matches the `sg_login` cookie set with it.
pub fn login(lang: Lang, csrf: &str, error: Option<LoginError>) -> String {
    let error = error.map_or_else(String::new, |e| {
        let msg = match e {
            LoginError::Locked { minutes_left } => {
                t(lang, "login.error.locked").replace("{minutes}", &minutes_left.to_string())
            }
            e => t(lang, &format!("login.error.{}", e.code())),
        };
        format!(
            "<p id=\"login-error\" class=\"error\" role=\"alert\" data-code=\"{}\">{}</p>\n",
            e.code(),
            escape(&msg)
        )
    });
    let context = serde_json::json!({"lang": lang.key(), "page": "login", "strings": STRINGS[lang.key()]});
    format!(
        "{head}<body data-page=\"login\" class=\"login\">\n\
         <script id=\"sg-context\" type=\"application/json\">{context}</script>\n\
         <main id=\"main\" class=\"login-box\">\n<p class=\"brand\">{brand}</p>\n<h1>{title}</h1>\n{error}\
         <form id=\"login-form\" method=\"post\" action=\"/login\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <label for=\"login-name\">{name}</label>\n\
         <input id=\"login-name\" name=\"name\" autocomplete=\"username\" required maxlength=\"64\" autofocus>\n\
         <label for=\"login-password\">{password}</label>\n\
         <input id=\"login-password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\n\
         <button id=\"login-submit\" type=\"submit\">{submit}</button>\n</form>\n\
         <p><button id=\"lang-toggle\" type=\"button\" class=\"link\">{toggle}</button></p>\n</main>\n\
         <script src=\"/assets/console.js\"></script>\n</body>\n</html>\n",
        head = head(lang, &t(lang, "login.title"), ""),
        context = script_json(&context),
        brand = escape(&t(lang, "brand")),
        title = escape(&t(lang, "login.title")),
        csrf = escape(csrf),
        name = escape(&t(lang, "login.name")),
        password = escape(&t(lang, "login.password")),
        submit = escape(&t(lang, "login.submit")),
        toggle = escape(&t(lang, "lang.toggle")),
    )
}

fn header(lang: Lang, s: &Session, current: Page) -> String {
    let nav: String = Page::ALL
        .into_iter()
        .filter(|p| p.allowed(&s.account.role))
        .map(|p| {
            let current = if p == current { " aria-current=\"page\"" } else { "" };
            format!(
                "<a href=\"/{}\" id=\"nav-{}\"{current}>{}</a>",
                p.name(),
                p.name(),
                escape(&t(lang, &format!("nav.{}", p.name())))
            )
        })
        .collect();
    let who = match (&s.account.role, &s.account.street) {
        (AccountRole::Street, Some(street)) => format!("{} · {}", t(lang, "user.street"), street),
        _ => t(lang, "user.admin"),
    };
    format!(
        "<a class=\"skip\" href=\"#main\">{skip}</a>\n<header class=\"top\">\n<p class=\"brand\">{brand}</p>\n\
         <nav aria-label=\"{navlabel}\">{nav}</nav>\n<div class=\"who\"><span id=\"user-name\">{name}</span> \
         <span id=\"user-role\" class=\"muted\">{who}</span>\n\
         <button id=\"lang-toggle\" type=\"button\" class=\"link\">{toggle}</button>\n\
         <form id=\"logout-form\" method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" \
         value=\"{csrf}\"><button id=\"logout\" type=\"submit\">{logout}</button></form></div>\n</header>\n",
        skip = escape(&t(lang, "skip")),
        brand = escape(&t(lang, "brand")),
        navlabel = escape(&t(lang, "nav.label")),
        name = escape(&s.account.name),
        who = escape(&who),
        toggle = escape(&t(lang, "lang.toggle")),
        csrf = escape(&s.csrf),
        logout = escape(&t(lang, "logout")),
    )
}

/// A page's shell: its script draws `#app` from the API.
pub fn shell(lang: Lang, s: &Session, page: Page, today: &str) -> String {
    let title = t(lang, &format!("nav.{}", page.name()));
    let context = serde_json::json!({
        "lang": lang.key(),
        "page": page.name(),
        "today": today,
        "user": {"name": s.account.name, "role": s.account.role, "street": s.account.street},
        "strings": STRINGS[lang.key()],
    });
    let meta = format!("<meta name=\"csrf-token\" content=\"{}\">\n", escape(&s.csrf));
    format!(
        "{head}<body data-page=\"{page}\">\n<script id=\"sg-context\" type=\"application/json\">{context}</script>\n\
         {header}<main id=\"main\" tabindex=\"-1\">\n<h1>{title}</h1>\n<div id=\"app\" aria-live=\"polite\"></div>\n\
         </main>\n<script src=\"/assets/uPlot.iife.min.js\"></script>\n<script src=\"/assets/console.js\"></script>\n\
         <script src=\"/assets/pages/{page}.js\"></script>\n</body>\n</html>\n",
        head = head(lang, &title, &meta),
        page = page.name(),
        context = script_json(&context),
        header = header(lang, s, page),
        title = escape(&title),
    )
}

/// A page the account may not open.
pub fn forbidden(lang: Lang, s: &Session, page: Page) -> String {
    format!(
        "{head}<body data-page=\"forbidden\">\n{header}<main id=\"main\"><h1>{title}</h1><p>{body}</p></main>\n\
         <script src=\"/assets/console.js\"></script>\n</body>\n</html>\n",
        head = head(lang, &t(lang, "forbidden.title"), ""),
        header = header(lang, s, page),
        title = escape(&t(lang, "forbidden.title")),
        body = escape(&t(lang, "forbidden.body")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_the_same_common_keys() {
        let zh = STRINGS["zh"].as_object().unwrap();
        let en = STRINGS["en"].as_object().unwrap();
        let mut a: Vec<_> = zh.keys().collect();
        let mut b: Vec<_> = en.keys().collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        for p in Page::ALL {
            assert_ne!(t(Lang::Zh, &format!("nav.{}", p.name())), format!("nav.{}", p.name()));
        }
    }

    #[test]
    fn text_is_escaped_and_json_cannot_close_its_script() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        let v = serde_json::json!({"s": "</script><script>alert(1)</script>"});
        assert!(!script_json(&v).contains("</script"));
    }

    #[test]
    fn street_accounts_see_their_two_pages() {
        let allowed: Vec<_> = Page::ALL.into_iter().filter(|p| p.allowed(&AccountRole::Street)).collect();
        assert_eq!(allowed, [Page::Cards, Page::Reports]);
        assert!(Page::ALL.into_iter().all(|p| p.allowed(&AccountRole::Admin)));
        assert_eq!(Page::from_path("/today"), Some(Page::Today));
        assert_eq!(Page::from_path("/today/x"), None);
    }
}
