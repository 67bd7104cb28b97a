{#- The tracking snippet's inline script, from the newline after `<script>` to the one before
    `</script>`: `snippet.html` and the demo page carry it, the demo page's CSP allows it by its
    hash. The base URL goes in as a JSON string (the filter escapes what could end the string
    or the element). #}
  var _paq = window._paq = window._paq || [];
  _paq.push(['trackPageView']);
  _paq.push(['enableLinkTracking']);
  (function() {
    var u={{ base|json|safe }};
    _paq.push(['setTrackerUrl', u+'matomo.php']);
    _paq.push(['setSiteId', '{{ id }}']);
{%- if let Some(name) = optout_cookie %}
    _paq.push(['setOptOutCookieName', {{ name|json|safe }}]);
{%- endif %}
    var d=document, g=d.createElement('script'), s=d.getElementsByTagName('script')[0];
    g.async=true; g.src=u+'tally.js'; s.parentNode.insertBefore(g,s);
  })();
