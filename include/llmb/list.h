/*
 * The one intrusive doubly linked list of llmb: any struct with the members
 * `prev` and `next` (pointers to its own type) can sit on a list whose head
 * is a plain pointer to the first element, NULL when the list is empty.
 * Walk it with an ordinary loop:
 *
 *     for (struct llmb_task *t = w->tasks; t != NULL; t = t->next)
 *
 * and take the next pointer first when the body may remove the element.
 * An element is on at most one list through these members; the list does
 * not own it (removing does not free). Macros because the element type
 * varies; each evaluates `head` and `elt` more than once, so pass plain
 * lvalues without side effects.
 */
#ifndef LLMB_LIST_H
#define LLMB_LIST_H

#include <stddef.h>

/* Puts elt first on the list that head (an lvalue pointer) starts. */
#define LLMB_LIST_INSERT(head, elt)                                           \
    do {                                                                      \
        (elt)->prev = NULL;                                                   \
        (elt)->next = (head);                                                 \
        if ((head) != NULL)                                                   \
            (head)->prev = (elt);                                             \
        (head) = (elt);                                                       \
    } while (0)

/* Takes elt off the list that head starts and clears its links. Harmless
 * for an element that was never inserted (prev and next NULL, and not
 * the head). */
#define LLMB_LIST_REMOVE(head, elt)                                           \
    do {                                                                      \
        if ((elt)->prev != NULL)                                              \
            (elt)->prev->next = (elt)->next;                                  \
        else if ((head) == (elt))                                             \
            (head) = (elt)->next;                                             \
        if ((elt)->next != NULL)                                              \
            (elt)->next->prev = (elt)->prev;                                  \
        (elt)->prev = (elt)->next = NULL;                                     \
    } while (0)

#endif
