// The keyboard's ways through the pages: a skip link, the first of every page's tab stops,
// that takes the focus past the header to what the page is about (a session's transcript,
// its turns one tab stop each in the order they were said), and the arrow keys that move the
// focus along such a list, quicker than Tab through a long call.

/** What a skip link may give the focus to: the first of these in its target. */
const FOCUSABLE = "button:not([tabindex='-1']), a[href], input, select";

/** Makes ``link`` (an <a> whose fragment would be read as a route) take the focus to the
 * first control in the element of ``page()`` marked data-skip, else to that element or the
 * page itself (a <main> with tabindex=-1). */
export function skipLink(link, page) {
  link.addEventListener("click", (event) => {
    event.preventDefault();
    const target = page().querySelector("[data-skip]") ?? page();
    (target.querySelector(FOCUSABLE) ?? target).focus();
  });
}

/** Up and Down, Home and End move the focus between the buttons of ``list``'s items. */
export function arrowKeys(list) {
  list.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    const buttons = [...list.querySelectorAll(":scope > li > button")];
    const at = buttons.indexOf(document.activeElement);
    const next = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: buttons.length - 1 }[event.key];
    if (at < 0 || next === undefined) return;
    event.preventDefault(); // the list would scroll instead
    buttons[Math.max(0, Math.min(next, buttons.length - 1))].focus();
  });
}
