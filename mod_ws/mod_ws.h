/* public header: see issue 4 */
