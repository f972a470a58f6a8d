//! What the `rfc` cache does beyond `http-cache-semantics`'s freshness and
//! revalidation decisions, each found missing by the HTTP caching test
//! suite (benches/cache-tests): reading an `Age` the way shared caches do,
//! answering a client's own conditional or range request from a fresh
//! entry, keeping each variant of a URL that `Vary`s, storing responses
//! that set cookies (as RFC 9111 allows and squid does), and invalidating
//! the URLs an unsafe request's response names.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode, Uri};

/// The `Age` that stands for "older than anything": RFC 9111 §1.2.2's
/// value for a delta-seconds that cannot be represented.
const OLDEST: u32 = 2_147_483_648_u32;

/// Rewrites the response's `Age` to the one number it means, before the
/// policy reads it: the leading digits of its first value (`7200.0`,
/// `7200;foo=bar` and `7200, 0` are 7200 s old, as squid reads them), and
/// a value that starts with no digit (`abc`, `-7200`) is taken as the
/// oldest there is, so that the response is stale rather than fresh for
/// its whole lifetime.
pub(super) fn normalise_age(headers: &mut HeaderMap) {
    let Some(first) = headers.get(header::AGE) else {
        return;
    };
    let text = String::from_utf8_lossy(first.as_bytes());
    let value = text.split(',').next().unwrap_or_default().trim();
    let digits: &str = &value[..value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len())];
    let age = if digits.is_empty() {
        u64::from(OLDEST)
    } else {
        digits
            .parse::<u64>()
            .map_or(u64::from(OLDEST), |n| n.min(u64::from(OLDEST)))
    };
    headers.insert(header::AGE, HeaderValue::from(age));
}

/// Whether a client's conditional GET is answered 304 by the stored
/// response (RFC 9110 §13.1.2 and §13.1.3, in §13.2.2's order):
/// `If-None-Match` by weak comparison with the stored `ETag` (`*` matches
/// any), else `If-Modified-Since` against the stored `Last-Modified`.
pub(super) fn not_modified(request: &HeaderMap, stored: &HeaderMap) -> bool {
    if let Some(wanted) = request.get(header::IF_NONE_MATCH) {
        let Some(etag) = stored.get(header::ETAG).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Ok(wanted) = wanted.to_str() else {
            return false;
        };
        let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
        return wanted
            .split(',')
            .any(|tag| tag.trim() == "*" || opaque(tag) == opaque(etag));
    }
    let Some(since) = request
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(httpdate)
    else {
        return false;
    };
    stored
        .get(header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(httpdate)
        .is_some_and(|modified| modified <= since)
}

/// The 304 for a client whose copy is still the stored one: the fields
/// RFC 9110 §15.4.5 says a 304 carries, from the stored response.
pub(super) fn not_modified_headers(stored: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for name in [
        header::CACHE_CONTROL,
        header::CONTENT_LOCATION,
        header::DATE,
        header::ETAG,
        header::EXPIRES,
        header::VARY,
        header::LAST_MODIFIED,
    ] {
        for value in stored.get_all(&name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

/// The status of such an answer.
pub(super) const NOT_MODIFIED: StatusCode = StatusCode::NOT_MODIFIED;

/// The head the cache policy judges a response by: the response's, but
/// without `Set-Cookie`, which `http-cache-semantics` (unlike RFC 9111 and
/// squid) takes as a reason not to store in a shared cache, and with
/// `Cache-Control` in lowercase, since its directive names are
/// case-insensitive (RFC 9111 §5.2) and the policy matches them exactly.
pub(super) fn policy_head<B>(response: &Response<B>) -> Response<()> {
    let mut head = Response::new(());
    *head.status_mut() = response.status();
    *head.version_mut() = response.version();
    *head.headers_mut() = response.headers().clone();
    let headers = head.headers_mut();
    headers.remove(header::SET_COOKIE);
    let lowered: Vec<HeaderValue> = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| HeaderValue::from_bytes(&v.as_bytes().to_ascii_lowercase()).ok())
        .collect();
    headers.remove(header::CACHE_CONTROL);
    for value in lowered {
        headers.append(header::CACHE_CONTROL, value);
    }
    head
}

/// The request as the policy should see it for a response that `varies`:
/// each header the response varies by written as one line, its list members
/// without the whitespace between them, so that `Foo: 1, 2` and two lines
/// `Foo: 1` and `Foo: 2` select the same variant.
pub(super) fn canonical_request(head: &http::Request<()>, varies: &HeaderMap) -> http::Request<()> {
    let mut canonical = http::Request::new(());
    *canonical.method_mut() = head.method().clone();
    *canonical.uri_mut() = head.uri().clone();
    *canonical.version_mut() = head.version();
    *canonical.headers_mut() = head.headers().clone();
    for name in vary_names(varies) {
        let Ok(name) = header::HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        let joined = list_members(head.headers(), &name).join(",");
        let headers = canonical.headers_mut();
        headers.remove(&name);
        if let Ok(value) = HeaderValue::from_str(&joined)
            && !joined.is_empty()
        {
            headers.insert(name, value);
        }
    }
    canonical
}

/// The header names a response's `Vary` lists, lowercase, sorted, once each.
fn vary_names(varies: &HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = varies
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Every list member of every line of header `name`, trimmed.
fn list_members(headers: &HeaderMap, name: &header::HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .flat_map(|v| {
            v.split(',')
                .map(|m| m.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Where the variant of `url` that `request` selects is kept, when the
/// stored response `varies` by request headers: the URL plus each named
/// header's values, with the whitespace between list members dropped.
/// `None` without `Vary`, or with `Vary: *`, which never matches.
pub(super) fn variant_key(url: &str, varies: &HeaderMap, request: &HeaderMap) -> Option<String> {
    let names = vary_names(varies);
    if names.is_empty() || names.iter().any(|n| n == "*") {
        return None;
    }
    let mut key = format!("{url}\nvary");
    for name in names {
        let name = header::HeaderName::from_bytes(name.as_bytes()).ok()?;
        key.push_str(&format!(
            "\n{name}: {}",
            list_members(request, &name).join(",")
        ));
    }
    Some(key)
}

/// The single byte range a client asks of a stored body of `len` bytes
/// (RFC 9110 §14.1.2: `first-last`, `first-`, `-suffix`), as `first..=last`,
/// or `Err(())` when it cannot be satisfied. `None` for no `Range`, a unit
/// other than bytes, several ranges, or an `If-Range` the stored response
/// does not match: the whole body is the answer then.
pub(super) fn byte_range(
    request: &HeaderMap,
    stored: &HeaderMap,
    len: u64,
) -> Option<Result<(u64, u64), ()>> {
    let spec = request.get(header::RANGE)?.to_str().ok()?.trim();
    if let Some(validator) = request.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        let validator = validator.trim();
        let same = if validator.starts_with('"') {
            stored.get(header::ETAG).and_then(|v| v.to_str().ok()) == Some(validator)
        } else {
            stored
                .get(header::LAST_MODIFIED)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|lm| lm.trim() == validator)
        };
        if !same {
            return None;
        }
    }
    let ranges = spec.strip_prefix("bytes=")?;
    if ranges.contains(',') {
        return None;
    }
    let (first, last) = ranges.trim().split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        let suffix: u64 = last.parse().ok()?;
        if suffix == 0 || len == 0 {
            return Some(Err(()));
        }
        (len.saturating_sub(suffix), len - 1)
    } else {
        let first: u64 = first.parse().ok()?;
        let last: u64 = if last.is_empty() {
            u64::MAX
        } else {
            last.parse().ok()?
        };
        if last < first {
            return None;
        }
        if first >= len {
            return Some(Err(()));
        }
        (first, last.min(len - 1))
    };
    Some(Ok(range))
}

/// The cache keys a successful unsafe request invalidates besides its own
/// URL (RFC 9111 §4.4): those of its response's `Location` and
/// `Content-Location`, when they are on the same origin.
pub(super) fn also_invalidated(method: &Method, uri: &Uri, response: &HeaderMap) -> Vec<String> {
    if method.is_safe() {
        return Vec::new();
    }
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Vec::new();
    };
    let origin = format!("{scheme}://{authority}");
    [header::LOCATION, header::CONTENT_LOCATION]
        .iter()
        .filter_map(|name| response.get(name)?.to_str().ok())
        .filter_map(|target| {
            if target.starts_with('/') && !target.starts_with("//") {
                return Some(format!("{origin}{target}"));
            }
            let absolute: Uri = target.parse().ok()?;
            (absolute.scheme_str() == Some(scheme) && absolute.authority() == Some(authority))
                .then(|| absolute.to_string())
        })
        .collect()
}

/// An HTTP date (RFC 9110 §5.6.7, all three forms).
fn httpdate(text: &str) -> Option<std::time::SystemTime> {
    httpdate::parse_http_date(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age_of(value: &str) -> String {
        let mut h = HeaderMap::new();
        h.insert(header::AGE, HeaderValue::from_str(value).unwrap());
        normalise_age(&mut h);
        h[header::AGE].to_str().unwrap().to_owned()
    }

    #[test]
    fn an_age_is_its_leading_digits_and_garbage_is_old() {
        assert_eq!(age_of("7200.0"), "7200");
        assert_eq!(age_of("7200;foo=bar"), "7200");
        assert_eq!(age_of("7200,0"), "7200");
        assert_eq!(age_of("0, 7200"), "0");
        assert_eq!(age_of("abc"), OLDEST.to_string());
        assert_eq!(age_of("-7200"), OLDEST.to_string());
        assert_eq!(age_of("99999999999999999999"), OLDEST.to_string());
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| (n.clone(), HeaderValue::from_str(v).unwrap()))
            .collect()
    }

    #[test]
    fn conditional_requests_match_by_etag_first_then_by_date() {
        let stored = headers(&[
            (header::ETAG, "\"abc\""),
            (header::LAST_MODIFIED, "Mon, 07 Dec 2026 01:00:00 GMT"),
        ]);
        let ask = |pairs: &[(header::HeaderName, &str)]| not_modified(&headers(pairs), &stored);
        assert!(ask(&[(header::IF_NONE_MATCH, "\"abc\"")]));
        assert!(ask(&[(header::IF_NONE_MATCH, "W/\"abc\"")]));
        assert!(ask(&[(header::IF_NONE_MATCH, "\"x\", \"abc\"")]));
        assert!(ask(&[(header::IF_NONE_MATCH, "*")]));
        assert!(!ask(&[(header::IF_NONE_MATCH, "\"x\"")]));
        // If-None-Match decides alone when it is there.
        assert!(!ask(&[
            (header::IF_NONE_MATCH, "\"x\""),
            (header::IF_MODIFIED_SINCE, "Mon, 07 Dec 2026 02:00:00 GMT"),
        ]));
        assert!(ask(&[(
            header::IF_MODIFIED_SINCE,
            "Mon, 07 Dec 2026 02:00:00 GMT"
        )]));
        assert!(ask(&[(
            header::IF_MODIFIED_SINCE,
            "Monday, 07-Dec-26 01:00:00 GMT"
        )]));
        assert!(!ask(&[(
            header::IF_MODIFIED_SINCE,
            "Mon, 07 Dec 2026 00:59:59 GMT"
        )]));
        assert!(!ask(&[(header::IF_MODIFIED_SINCE, "yesterday")]));
        assert!(!ask(&[]));
    }

    #[test]
    fn ranges_are_single_byte_ranges_of_the_stored_body() {
        let stored = headers(&[(header::ETAG, "\"e\"")]);
        let ask = |range: &str, len| byte_range(&headers(&[(header::RANGE, range)]), &stored, len);
        assert_eq!(ask("bytes=0-4", 10), Some(Ok((0, 4))));
        assert_eq!(ask("bytes=5-", 10), Some(Ok((5, 9))));
        assert_eq!(ask("bytes=-3", 10), Some(Ok((7, 9))));
        assert_eq!(ask("bytes=-30", 10), Some(Ok((0, 9))));
        assert_eq!(ask("bytes=8-100", 10), Some(Ok((8, 9))));
        assert_eq!(ask("bytes=10-", 10), Some(Err(())));
        assert_eq!(ask("bytes=0-1,4-5", 10), None);
        assert_eq!(ask("lines=0-1", 10), None);
        assert_eq!(ask("bytes=5-2", 10), None);
        let if_range = |v: &str| {
            byte_range(
                &headers(&[(header::RANGE, "bytes=0-1"), (header::IF_RANGE, v)]),
                &stored,
                10,
            )
        };
        assert_eq!(if_range("\"e\""), Some(Ok((0, 1))));
        assert_eq!(if_range("\"other\""), None);
    }

    #[test]
    fn variants_are_keyed_by_the_vary_headers_values() {
        let vary = headers(&[(header::VARY, "Accept-Language, foo")]);
        let key = |pairs: &[(header::HeaderName, &str)]| {
            variant_key("http://a/x", &vary, &headers(pairs)).unwrap()
        };
        let foo = header::HeaderName::from_static("foo");
        let en = key(&[(header::ACCEPT_LANGUAGE, "en"), (foo.clone(), "1, 2")]);
        assert_eq!(
            en,
            key(&[(foo.clone(), "1,2"), (header::ACCEPT_LANGUAGE, "en")])
        );
        assert_ne!(en, key(&[(header::ACCEPT_LANGUAGE, "fr"), (foo, "1, 2")]));
        assert!(variant_key("http://a/x", &HeaderMap::new(), &HeaderMap::new()).is_none());
        let star = headers(&[(header::VARY, "*")]);
        assert!(variant_key("http://a/x", &star, &HeaderMap::new()).is_none());
    }

    #[test]
    fn location_and_content_location_on_the_same_origin_are_invalidated() {
        let uri: Uri = "http://app:8000/items".parse().unwrap();
        let response = headers(&[
            (header::LOCATION, "/items/7"),
            (header::CONTENT_LOCATION, "http://app:8000/items/7/v1"),
        ]);
        assert_eq!(
            also_invalidated(&Method::POST, &uri, &response),
            ["http://app:8000/items/7", "http://app:8000/items/7/v1"]
        );
        let elsewhere = headers(&[(header::LOCATION, "http://other:8000/items/7")]);
        assert!(also_invalidated(&Method::POST, &uri, &elsewhere).is_empty());
        assert!(also_invalidated(&Method::GET, &uri, &response).is_empty());
    }
}
